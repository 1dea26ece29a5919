"""``PReLU``: a leaky ReLU whose negative slope is learned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from nnx.seed_compat import Module
from nnx.nn.dtypes import Dtype, promote_dtype
from nnx.variables import Param



if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import PReLUState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class PReLU(Module):
    """``x`` where ``x >= 0``, ``negative_slope * x`` elsewhere; ``negative_slope`` is a scalar ``Param``.

    Unlike the ``nnx.leaky_relu`` function it holds a parameter, so it is
    built once (``nnx.PReLU(0.1)``) and called like a layer. The output keeps
    the input's dtype (the slope is cast to it) unless ``dtype`` is given.
    """

    negative_slope: Param[jax.Array]

    def __init__(
        self, negative_slope_init: float = 0.01, *, dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32
    ) -> None:
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.negative_slope = Param(jnp.asarray(negative_slope_init, dtype=param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.dtype is None:
            slope = self.negative_slope.value.astype(x.dtype)
        else:
            x, slope = promote_dtype((x, self.negative_slope.value), dtype=self.dtype)
        return jnp.where(x >= 0, x, slope * x)

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[PReLU, PReLUState]
