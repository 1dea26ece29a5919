"""``Linear``: ``y = x @ kernel + bias`` over the last axis of ``x``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, promote_dtype
from nnx.nn.metadata import Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import LinearState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

default_kernel_init: Initializer = initializers.lecun_normal()
default_bias_init: Initializer = initializers.zeros


class Linear(Module):
    """A dense layer: ``kernel`` has shape ``(in_features, out_features)``.

    ``dtype`` is the dtype of the computation (``None``: promote inputs and
    parameters); ``param_dtype`` the dtype the parameters are stored in.
    ``kernel`` and ``bias`` are ``Param`` cells (``layer.kernel[...]`` is the
    array); with ``use_bias=False``, ``bias`` is ``None`` and the State has no
    ``bias`` leaf.
    """

    kernel: Param[jax.Array]
    bias: Param[jax.Array] | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        use_bias: bool = True,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        bias_init: Initializer = default_bias_init,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("Linear", rngs, ctx)
        self.in_features = in_features
        self.out_features = out_features
        self.use_bias = use_bias
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.precision = precision
        self.kernel = Param(kernel_init(rngs.params(), (in_features, out_features), param_dtype))
        record_metadata(self, "kernel", kernel_init)
        self.bias = None
        if use_bias:
            self.bias = Param(bias_init(rngs.params(), (out_features,), param_dtype))
            record_metadata(self, "bias", bias_init)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        contract = (((x.ndim - 1,), (0,)), ((), ()))
        y = lax.dot_general(x, kernel, contract, precision=self.precision)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
        if bias is not None:
            y = y + bias
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Linear, LinearState]
