"""Recurrent cells (``LSTMCell``, ``GRUCell``) and ``RNN``, which scans a cell over time.

A cell is a module called as ``cell(carry, x) -> (new_carry, y)`` on one time
step; ``cell.initialize_carry(x.shape)`` makes the first carry (zeros;
``initialize_carry(x.shape, rngs, carry_init=init)`` draws it instead, and a
``carry_init=`` given to the constructor is the default). The gate
weights of a cell are fused into one input kernel and one recurrent kernel
(gates side by side on the last axis), so a step is two matrix products.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, cast

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.filters import Not
from nnx.graph import merge, split, state, update
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, promote_dtype
from nnx.nn.linear import default_kernel_init
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.nn.carry_init import initial_state
from nnx.rngs import Rngs, RngStream
from nnx.variables import Boxed, Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import GRUCellState, LSTMCellState, RNNState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

Carry = Any


def _gate_blocks(init: Initializer, rngs: Rngs, rows: int, hidden: int, gates: int, dtype: Dtype) -> jax.Array:
    """``gates`` kernels of shape ``(rows, hidden)``, each initialised on its own, side by side.

    Half-precision kernels are initialised in float32 and cast: the default
    recurrent initializer (orthogonal) runs a QR decomposition, which JAX has
    no bfloat16/float16 kernel for.
    """
    wide = jnp.float32 if _is_half(dtype) else dtype
    blocks = [init(rngs.params(), (rows, hidden), wide) for _ in range(gates)]
    metadata: dict[str, Any] = {}
    if isinstance(blocks[0], Boxed):  # nnx.with_partitioning: keep its axis names on the fused kernel
        metadata = blocks[0].metadata
        blocks = [b.value if isinstance(b, Boxed) else b for b in blocks]
    fused = jnp.concatenate(blocks, axis=-1).astype(dtype)
    return cast("jax.Array", Boxed(fused, **metadata)) if metadata else fused


def _is_half(dtype: Dtype) -> bool:
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize < 4


class _Cell(Module):
    """What the fused cells share: the two kernels, the bias and the projections."""

    input_kernel: Param[jax.Array]
    recurrent_kernel: Param[jax.Array]
    bias: Param[jax.Array]

    def _build(
        self,
        in_features: int,
        hidden_features: int,
        gates: int,
        kernel_init: Initializer,
        recurrent_kernel_init: Initializer,
        bias_init: Initializer,
        dtype: Dtype | None,
        param_dtype: Dtype,
        carry_init: Initializer | None,
        metadata: tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]],
        rngs: Rngs,
    ) -> None:
        self.carry_init = carry_init
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.input_kernel = Param(_gate_blocks(kernel_init, rngs, in_features, hidden_features, gates, param_dtype))
        record_metadata(self, "input_kernel", kernel_init, metadata[0])
        self.recurrent_kernel = Param(
            _gate_blocks(recurrent_kernel_init, rngs, hidden_features, hidden_features, gates, param_dtype)
        )
        record_metadata(self, "recurrent_kernel", recurrent_kernel_init, metadata[1])
        self.bias = Param(bias_init(rngs.params(), (gates * hidden_features,), param_dtype))
        record_metadata(self, "bias", bias_init, metadata[2])

    def _projections(self, x: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x @ input_kernel + bias`` and ``h @ recurrent_kernel``, all gates at once."""
        weights = (self.input_kernel[...], self.recurrent_kernel[...], self.bias[...])
        x, h, wi, wh, b = promote_dtype((x, h, *weights), dtype=self.dtype)
        return x @ wi + b, h @ wh


class LSTMCell(_Cell):
    """Long short-term memory: carry ``(c, h)``; gates input ``i``, forget ``f``,
    candidate ``g``, output ``o`` (in that order along the fused kernels)::

        i, f, o = gate_fn(...), g = activation_fn(...)
        c' = f * c + i * g;  h' = o * activation_fn(c');  output h'
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
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn
        self._build(
            in_features, hidden_features, 4, kernel_init, recurrent_kernel_init, bias_init, dtype, param_dtype, carry_init,
            (kernel_metadata, recurrent_kernel_metadata, bias_metadata), rngs,
        )  # fmt: skip

    def __call__(self, carry: tuple[jax.Array, jax.Array], x: jax.Array) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        c, h = carry
        from_x, from_h = self._projections(x, h)
        i, f, g, o = jnp.split(from_x + from_h, 4, axis=-1)
        new_c = self.gate_fn(f) * c + self.gate_fn(i) * self.activation_fn(g)
        new_h = self.gate_fn(o) * self.activation_fn(new_c)
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


class GRUCell(_Cell):
    """Gated recurrent unit: carry ``h``; gates reset ``r``, update ``z``, candidate ``n``::

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
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn
        self._build(
            in_features, hidden_features, 3, kernel_init, recurrent_kernel_init, bias_init, dtype, param_dtype, carry_init,
            (kernel_metadata, recurrent_kernel_metadata, bias_metadata), rngs,
        )  # fmt: skip

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        from_x, from_h = self._projections(x, carry)
        xr, xz, xn = jnp.split(from_x, 3, axis=-1)
        hr, hz, hn = jnp.split(from_h, 3, axis=-1)
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
    ) -> None:
        self.cell = cell
        self.time_major = time_major
        self.return_carry = return_carry
        self.reverse = reverse
        self.keep_order = keep_order
        self.unroll = unroll

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
        # The parameters are closed over (broadcast to every step); the rest of the
        # cell's state rides in the scan carry and is written back at the end.
        graphdef, params, rest = split(self.cell, Param, ...)
        times = jnp.arange(steps)

        def step(loop: tuple[Carry, Any], inputs: tuple[jax.Array, jax.Array]) -> tuple[tuple[Carry, Any], jax.Array]:
            carry, rest = loop
            t, x = inputs
            cell = merge(graphdef, params, rest)
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
            return (new_carry, state(cell, Not(Param))), y

        (final_carry, final_rest), ys = lax.scan(step, (carry, rest), (times, xs), unroll=self.unroll)
        update(self.cell, final_rest)
        return final_carry, ys

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[RNN, RNNState]


def _flip(xs: jax.Array, seq_lengths: jax.Array | None) -> jax.Array:
    """Reverse time-major ``xs`` along time; with ``seq_lengths``, only each valid prefix."""
    if seq_lengths is None:
        return jnp.flip(xs, 0)
    steps = xs.shape[0]
    t = jnp.arange(steps)[:, None]
    source = jnp.where(t < seq_lengths[None, :], seq_lengths[None, :] - 1 - t, t)  # (time, batch)
    source = source.reshape(source.shape + (1,) * (xs.ndim - 2))
    return jnp.take_along_axis(xs, jnp.broadcast_to(source, xs.shape[:2] + (1,) * (xs.ndim - 2)), axis=0)
