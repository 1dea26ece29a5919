"""``SimpleCell``: the Elman recurrent cell, ``h' = activation(x W_i + b + h W_h)``."""

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
    from nnx.layer_states import SimpleCellState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class SimpleCell(Module):
    """Carry ``h`` (also the output); ``h' = activation_fn(dense_i(x) + dense_h(h))``.

    ``dense_i`` (``in_features -> hidden_features``, with the bias) and
    ``dense_h`` (``hidden -> hidden``, no bias) are ``Linear`` layers.
    ``residual=True`` adds ``h`` before the activation. Use it with
    ``nnx.RNN`` to run a sequence.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        *,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        residual: bool = False,
        activation_fn: Callable[[jax.Array], jax.Array] = jnp.tanh,
        kernel_init: Initializer = default_kernel_init,
        recurrent_kernel_init: Initializer = initializers.orthogonal(),
        bias_init: Initializer = initializers.zeros,
        carry_init: Initializer | None = None,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        recurrent_kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("SimpleCell", rngs, ctx)
        self.in_features = in_features
        self.hidden_features = hidden_features
        self.carry_init = carry_init  # initialize_carry's default
        self.param_dtype = param_dtype
        self.residual = residual
        self.activation_fn = activation_fn
        self.dense_h = Linear(
            hidden_features, hidden_features, use_bias=False, dtype=dtype, param_dtype=param_dtype,
            kernel_init=recurrent_kernel_init, kernel_metadata=recurrent_kernel_metadata, rngs=rngs,
        )  # fmt: skip
        self.dense_i = Linear(
            in_features, hidden_features, dtype=dtype, param_dtype=param_dtype, kernel_init=kernel_init,
            bias_init=bias_init, kernel_metadata=kernel_metadata, bias_metadata=bias_metadata, rngs=rngs,
        )  # fmt: skip

    def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        pre = self.dense_i(x) + self.dense_h(carry)
        if self.residual:
            pre = pre + carry
        h = self.activation_fn(pre)
        return h, h

    def initialize_carry(
        self,
        input_shape: tuple[int, ...],
        rngs: Rngs | RngStream | None = None,
        carry_init: Initializer | None = None,
    ) -> jax.Array:
        """The first ``h``, shaped ``(*batch, hidden_features)`` for inputs ``(*batch, in_features)``:
        zeros, or drawn by ``carry_init`` (default: the constructor's) from ``rngs``' ``carry`` stream."""
        init = carry_init if carry_init is not None else self.carry_init
        return initial_state(input_shape, self.hidden_features, self.param_dtype, init, rngs, "SimpleCell")

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[SimpleCell, SimpleCellState]
