"""``OptimizedLSTMCell``: an LSTM whose four gates come from two fused ``Linear`` layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.carry_init import initial_state
from nnx.nn.dtypes import Dtype
from nnx.nn.linear import Linear, default_kernel_init
from nnx.nn.metadata import NO_METADATA, Initializer
from nnx.rngs import Rngs, RngStream



if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import OptimizedLSTMCellState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class OptimizedLSTMCell(Module):
    """Long short-term memory with carry ``(c, h)``, computed as two matrix products per step.

    ``dense_i`` (``in_features -> 4 * hidden``, no bias) and ``dense_h``
    (``hidden -> 4 * hidden``, with the bias) give all gates at once, in the
    order input ``i``, forget ``f``, candidate ``g``, output ``o``::

        c' = gate_fn(f) * c + gate_fn(i) * activation_fn(g)
        h' = gate_fn(o) * activation_fn(c');   output h'

    The same function as ``nnx.LSTMCell``; this one keeps Flax's
    ``dense_i``/``dense_h`` layout, so its parameters load from Flax's
    ``OptimizedLSTMCell`` path for path.
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
        rngs = layer_rngs("OptimizedLSTMCell", rngs, ctx)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.carry_init = carry_init  # initialize_carry's default
        self.param_dtype = param_dtype
        self.gate_fn = gate_fn
        self.activation_fn = activation_fn
        self.dense_i = Linear(
            in_features, 4 * hidden_features, use_bias=False, dtype=dtype, param_dtype=param_dtype,
            kernel_init=kernel_init, kernel_metadata=kernel_metadata, rngs=rngs,
        )  # fmt: skip
        self.dense_h = Linear(
            hidden_features, 4 * hidden_features, dtype=dtype, param_dtype=param_dtype,
            kernel_init=recurrent_kernel_init, bias_init=bias_init, kernel_metadata=recurrent_kernel_metadata,
            bias_metadata=bias_metadata, rngs=rngs,
        )  # fmt: skip

    def __call__(
        self, carry: tuple[jax.Array, jax.Array], x: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        c, h = carry
        i, f, g, o = jnp.split(self.dense_i(x) + self.dense_h(h), 4, axis=-1)
        new_c = self.gate_fn(f) * c + self.gate_fn(i) * self.activation_fn(g)
        new_h = self.gate_fn(o) * self.activation_fn(new_c)
        return (new_c, new_h), new_h

    def initialize_carry(
        self,
        input_shape: tuple[int, ...],
        rngs: Rngs | RngStream | None = None,
        carry_init: Initializer | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """The first ``(c, h)`` for inputs ``(*batch, in_features)``: zeros, or two draws of
        ``carry_init`` (default: the constructor's) from ``rngs``' ``carry`` stream."""
        init = carry_init if carry_init is not None else self.carry_init
        c = initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "OptimizedLSTMCell")
        h = initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "OptimizedLSTMCell")
        return c, h

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[OptimizedLSTMCell, OptimizedLSTMCellState]
