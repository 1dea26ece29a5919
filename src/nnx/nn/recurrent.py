"""Recurrent cells (``LSTMCell``, ``GRUCell``) and ``RNN``, which scans a cell over time.

A cell is a module called as ``cell(carry, x) -> (new_carry, y)`` on one time
step; ``cell.initialize_carry(x.shape)`` makes the first carry (zeros;
``initialize_carry(x.shape, rngs, carry_init=init)`` draws it instead, and a
``carry_init=`` given to the constructor is the default). The cells keep
Flax's parameter layout, so their state loads from Flax path for path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.filters import All, Filter, Key, Not
from nnx.graph import iter_graph, merge, split, state, update
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype
from nnx.nn.linear import Linear, default_kernel_init
from nnx.nn.metadata import NO_METADATA, Initializer
from nnx.nn.carry_init import initial_state
from nnx.rngs import Rngs, RngStream, stream_filter
from nnx.variables import Boxed, Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import GRUCellState, LSTMCellState, RNNState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

Carry = Any
Path = tuple[Key, ...]


def _is_half(dtype: Dtype) -> bool:
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 4


def _in_float32(init: Initializer) -> Initializer:
    """``init`` run in float32 and cast to the half-precision dtype asked for: the default
    recurrent initializer (orthogonal) runs a QR decomposition, which JAX has no
    bfloat16/float16 kernel for."""

    def wide(key: jax.Array, shape: tuple[int, ...], dtype: Dtype = jnp.float32) -> Any:
        made = init(key, shape, jnp.float32)
        if isinstance(made, Boxed):  # nnx.with_partitioning: keep its axis names
            return Boxed(made.value.astype(dtype), **made.metadata)
        return made.astype(dtype)

    return wide


def _dense(
    rows: int,
    hidden: int,
    use_bias: bool,
    kernel_init: Initializer,
    bias_init: Initializer,
    dtype: Dtype | None,
    param_dtype: Dtype,
    kernel_metadata: Mapping[str, Any],
    bias_metadata: Mapping[str, Any],
    rngs: Rngs,
) -> Linear:
    """One gate projection ``rows -> hidden`` (a ``Linear``), as Flax lays the cells out."""
    if _is_half(param_dtype):
        kernel_init, bias_init = _in_float32(kernel_init), _in_float32(bias_init)
    return Linear(
        rows, hidden, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, kernel_init=kernel_init,
        bias_init=bias_init, kernel_metadata=kernel_metadata, bias_metadata=bias_metadata, rngs=rngs,
    )  # fmt: skip


class LSTMCell(Module):
    """Long short-term memory: carry ``(c, h)``; gates input ``i``, forget ``f``,
    candidate ``g``, output ``o``, each from its own pair of ``Linear`` layers
    (Flax's layout: ``ii``, ``if_``, ``ig``, ``io`` read the input, without
    bias; ``hi``, ``hf``, ``hg``, ``ho`` read ``h`` and hold the bias)::

        i = gate_fn(ii(x) + hi(h)), f, o likewise;  g = activation_fn(ig(x) + hg(h))
        c' = f * c + i * g;  h' = o * activation_fn(c');  output h'

    ``OptimizedLSTMCell`` computes the same function with the gates fused into
    two matrix products.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        gate_fn: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid,
        activation_fn: Callable[[jax.Array], jax.Array] = jnp.tanh,
        kernel_init: Initializer = default_kernel_init,
        recurrent_kernel_init: Initializer = initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        carry_init: Initializer | None = None,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        recurrent_kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs(type(self).__name__, rngs, ctx)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.carry_init = carry_init  # initialize_carry's default
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn

        def from_x() -> Linear:
            return _dense(in_features, hidden_features, False, kernel_init, bias_init, dtype, param_dtype,
                          kernel_metadata, bias_metadata, rngs)  # fmt: skip

        def from_h() -> Linear:
            return _dense(hidden_features, hidden_features, True, recurrent_kernel_init, bias_init, dtype,
                          param_dtype, recurrent_kernel_metadata, bias_metadata, rngs)  # fmt: skip

        self.ii = from_x()
        self.if_ = from_x()
        self.ig = from_x()
        self.io = from_x()
        self.hi = from_h()
        self.hf = from_h()
        self.hg = from_h()
        self.ho = from_h()

    def __call__(self, carry: tuple[jax.Array, jax.Array], x: jax.Array) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        c, h = carry
        i = self.gate_fn(self.ii(x) + self.hi(h))
        f = self.gate_fn(self.if_(x) + self.hf(h))
        g = self.activation_fn(self.ig(x) + self.hg(h))
        o = self.gate_fn(self.io(x) + self.ho(h))
        new_c = f * c + i * g
        new_h = o * self.activation_fn(new_c)
        return (new_c, new_h), new_h

    def initialize_carry(
        self,
        input_shape: tuple[int, ...],
        rngs: Rngs | RngStream | None = None,
        carry_init: Initializer | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """The first ``(c, h)`` for inputs of shape ``(*batch, in_features)``: zeros, or two
        draws of ``carry_init`` (default: the constructor's) from ``rngs``' ``carry`` stream."""
        init = carry_init if carry_init is not None else self.carry_init
        c = initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "LSTMCell")
        h = initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "LSTMCell")
        return c, h

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[LSTMCell, LSTMCellState]


class GRUCell(Module):
    """Gated recurrent unit: carry ``h``; gates reset ``r``, update ``z``, candidate ``n``.

    Flax's layout: ``dense_i`` (``in_features -> 3 * hidden``, with the bias)
    and ``dense_h`` (``hidden -> 3 * hidden``, no bias) give the three gates
    side by side, in the order ``r``, ``z``, ``n``::

        r = gate_fn(x W_r + b_r + h U_r);  z = gate_fn(x W_z + b_z + h U_z)
        n = activation_fn(x W_n + b_n + r * (h U_n));  h' = (1 - z) * n + z * h
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        gate_fn: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid,
        activation_fn: Callable[[jax.Array], jax.Array] = jnp.tanh,
        kernel_init: Initializer = default_kernel_init,
        recurrent_kernel_init: Initializer = initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        carry_init: Initializer | None = None,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        recurrent_kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs(type(self).__name__, rngs, ctx)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.carry_init = carry_init  # initialize_carry's default
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn
        self.dense_i = _dense(
            in_features, 3 * hidden_features, True, kernel_init, bias_init, dtype, param_dtype, kernel_metadata,
            bias_metadata, rngs,
        )  # fmt: skip
        self.dense_h = _dense(
            hidden_features, 3 * hidden_features, False, recurrent_kernel_init, bias_init, dtype, param_dtype,
            recurrent_kernel_metadata, bias_metadata, rngs,
        )  # fmt: skip

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xr, xz, xn = jnp.split(self.dense_i(x), 3, axis=-1)
        hr, hz, hn = jnp.split(self.dense_h(carry), 3, axis=-1)
        r = self.gate_fn(xr + hr)
        z = self.gate_fn(xz + hz)
        n = self.activation_fn(xn + r * hn)
        new_h = (1.0 - z) * n + z * carry
        return new_h, new_h

    def initialize_carry(
        self,
        input_shape: tuple[int, ...],
        rngs: Rngs | RngStream | None = None,
        carry_init: Initializer | None = None,
    ) -> jax.Array:
        """The first ``h`` for inputs of shape ``(*batch, in_features)``: zeros, or a draw of
        ``carry_init`` (default: the constructor's) from ``rngs``' ``carry`` stream."""
        init = carry_init if carry_init is not None else self.carry_init
        return initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "GRUCell")

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[GRUCell, GRUCellState]


class RecurrentCell(Protocol):
    """What ``RNN`` needs of a cell."""

    def __call__(self, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]: ...

    def initialize_carry(self, input_shape: tuple[int, ...]) -> Any: ...


class RNN(Module):
    """Apply ``cell`` to every time step of a sequence with ``lax.scan``.

    Inputs are ``(batch..., time, features)`` (``time_major=True``:
    ``(time, batch..., features)``); outputs have the same layout. The cell's
    parameters are shared by all steps; any other state of the cell (an RNG
    count, a counter) is carried from step to step and written back, so a
    cell holding a ``Dropout`` draws a new mask at every step.
    The carry keeps the dtype of the initial carry.
    ``broadcast_rngs`` (a filter over the cell's RNG streams; a string names a
    stream, as in Flax) picks streams that draw the *same* keys at every step:
    each call takes one key from such a stream (its count advances by one)
    and every step starts from it, so e.g. a recurrent dropout keeps one mask
    across the sequence.
    ``seq_lengths`` (one per example) freezes each example's carry after its
    last valid step; with ``reverse=True`` each example is read backwards from
    its last valid step (``keep_order=True`` puts outputs back in input order).
    """

    def __init__(
        self,
        cell: RecurrentCell,
        *,
        time_major: bool = False,
        return_carry: bool = False,
        reverse: bool = False,
        keep_order: bool = False,
        unroll: int = 1,
        broadcast_rngs: Filter | None = None,
    ) -> None:
        self.cell = cell
        self.time_major = time_major
        self.return_carry = return_carry
        self.reverse = reverse
        self.keep_order = keep_order
        self.unroll = unroll
        self.broadcast_rngs = broadcast_rngs

    def __call__(
        self,
        inputs: jax.Array,
        *,
        initial_carry: Carry | None = None,
        seq_lengths: jax.Array | None = None,
        return_carry: bool | None = None,
        reverse: bool | None = None,
        keep_order: bool | None = None,
    ) -> Any:
        """The outputs at every step, or ``(final_carry, outputs)`` with ``return_carry``."""
        return_carry = self.return_carry if return_carry is None else return_carry
        reverse = self.reverse if reverse is None else reverse
        keep_order = self.keep_order if keep_order is None else keep_order
        xs = inputs if self.time_major else jnp.moveaxis(inputs, -2, 0)  # (time, batch..., features)
        steps = xs.shape[0]
        if reverse:
            xs = _flip(xs, seq_lengths)
        carry = initial_carry if initial_carry is not None else self.cell.initialize_carry(xs.shape[1:])
        final_carry, ys = self._scan(carry, xs, seq_lengths, steps)
        if reverse and keep_order:
            ys = _flip(ys, seq_lengths)
        outputs = ys if self.time_major else jnp.moveaxis(ys, 0, -2)
        return (final_carry, outputs) if return_carry else outputs

    def _scan(self, carry: Carry, xs: jax.Array, seq_lengths: jax.Array | None, steps: int) -> tuple[Carry, jax.Array]:
        # The parameters (and the broadcast streams, at this call's key) are closed over:
        # every step sees the same. The rest of the cell's state rides in the scan carry
        # and is written back at the end.
        streams = self._broadcast_streams()
        held = _cells_of(set(streams))
        graphdef, *fixed, rest = _split_holding(self.cell, streams, held)
        carried = All(Not(Param), Not(held)) if streams else Not(Param)
        times = jnp.arange(steps)

        def step(loop: tuple[Carry, Any], inputs: tuple[jax.Array, jax.Array]) -> tuple[tuple[Carry, Any], jax.Array]:
            carry, rest = loop
            t, x = inputs
            cell = merge(graphdef, *fixed, rest)
            new_carry, y = cell(carry, x)
            alive = None if seq_lengths is None else t < seq_lengths  # (batch,): still inside their sequence

            def next_carry(new: jax.Array, old: jax.Array) -> jax.Array:
                # The carry keeps the dtype of the initial carry (scan needs fixed types),
                # whatever dtype the cell computes in.
                new = new.astype(old.dtype)
                if alive is None:
                    return new
                return jnp.where(alive.reshape(alive.shape + (1,) * (new.ndim - alive.ndim)), new, old)

            new_carry = jax.tree.map(next_carry, new_carry, carry)
            return (new_carry, state(cell, carried)), y

        (final_carry, final_rest), ys = lax.scan(step, (carry, rest), (times, xs), unroll=self.unroll)
        update(self.cell, final_rest)
        return final_carry, ys

    def _broadcast_streams(self) -> dict[Path, RngStream]:
        """The cell's streams chosen by ``broadcast_rngs``, by path."""
        if self.broadcast_rngs is None:
            return {}
        chosen = stream_filter(self.broadcast_rngs)
        return {
            path: node for path, node in iter_graph(self.cell) if isinstance(node, RngStream) and chosen(path, node)
        }

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[RNN, RNNState]


def _cells_of(stream_paths: set[Path]) -> Filter:
    """A filter for the ``key``/``count`` cells of the streams at ``stream_paths``."""
    return lambda path, value: path[:-1] in stream_paths


def _split_holding(cell: RecurrentCell, streams: dict[Path, RngStream], held: Filter) -> tuple[Any, ...]:
    """``(graphdef, params, rest)``, or with broadcast ``streams`` ``(graphdef, params,
    streams, rest)``: each such stream gives one key now (its count advances by one)
    and appears in its part at that key with count 0, so every step draws the same keys."""
    if not streams:
        return split(cell, Param, ...)
    saved = {path: (s.key.get_raw_value(), s.count.get_raw_value()) for path, s in streams.items()}
    drawn = {path: s() for path, s in streams.items()}
    try:
        for path, s in streams.items():
            s.key.set_raw_value(drawn[path])
            s.count.set_raw_value(jnp.zeros_like(saved[path][1]))
        return split(cell, Param, held, ...)
    finally:
        for path, s in streams.items():
            s.key.set_raw_value(saved[path][0])
            s.count.set_raw_value(saved[path][1] + 1)


def _flip(xs: jax.Array, seq_lengths: jax.Array | None) -> jax.Array:
    """Reverse time-major ``xs`` along time; with ``seq_lengths``, only each valid prefix."""
    if seq_lengths is None:
        return jnp.flip(xs, 0)
    steps = xs.shape[0]
    t = jnp.arange(steps)[:, None]
    source = jnp.where(t < seq_lengths[None, :], seq_lengths[None, :] - 1 - t, t)  # (time, batch)
    source = source.reshape(source.shape + (1,) * (xs.ndim - 2))
    return jnp.take_along_axis(xs, jnp.broadcast_to(source, xs.shape[:2] + (1,) * (xs.ndim - 2)), axis=0)
