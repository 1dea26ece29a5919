"""``Linear``: ``y = x @ kernel + bias`` over the last axis of ``x``."""

from __future__ import annotations

from typing import Any, Callable, Mapping, TYPE_CHECKING, cast

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import LinearState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

default_kernel_init: Initializer = initializers.lecun_normal()
default_bias_init: Initializer = initializers.zeros

#: A replacement for ``lax.dot_general`` (same positional arguments; a quantised
#: matmul, say). ``precision=`` is always passed, ``preferred_element_type=`` when set.
DotGeneral = Callable[..., jax.Array]
default_dot_general = cast(DotGeneral, lax.dot_general)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature


class Linear(Module):
    """A dense layer: ``kernel`` has shape ``(in_features, out_features)``.

    ``dtype`` is the dtype of the computation (``None``: promote inputs and
    parameters); ``param_dtype`` the dtype the parameters are stored in;
    ``preferred_element_type`` the dtype the matmul accumulates and returns
    (``jnp.float32`` for bfloat16 inputs, say). ``promote_dtype`` is the
    function that casts ``(x, kernel, bias)`` before the product and
    ``dot_general`` the product itself (``lax.dot_general`` by default).
    ``kernel`` and ``bias`` are ``Param`` cells (``layer.kernel[...]`` is the
    array); with ``use_bias=False``, ``bias`` is ``None`` and the State has no
    ``bias`` leaf. ``kernel_metadata``/``bias_metadata`` are set on the cells
    (``kernel_metadata={"sharding": ("embed", "mlp")}``).
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
        preferred_element_type: Dtype | None = None,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        dot_general: DotGeneral = default_dot_general,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
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
        self.preferred_element_type = preferred_element_type
        self.promote_dtype = promote_dtype
        self.dot_general = dot_general
        self.kernel = Param(kernel_init(rngs.params(), (in_features, out_features), param_dtype))
        record_metadata(self, "kernel", kernel_init, kernel_metadata)
        self.bias = None
        if use_bias:
            self.bias = Param(bias_init(rngs.params(), (out_features,), param_dtype))
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        contract = (((x.ndim - 1,), (0,)), ((), ()))
        y = self.dot_general(x, kernel, contract, **dot_options(self.precision, self.preferred_element_type))
        if bias is not None:
            y = y + bias
        return y

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Linear, LinearState]


def dot_options(precision: lax.PrecisionLike, preferred_element_type: Dtype | None) -> dict[str, Any]:
    """The keywords a layer passes to its product: ``preferred_element_type`` only when
    set, so a replacement ``dot_general``/``einsum_op`` without that keyword still works."""
    if preferred_element_type is None:
        return {"precision": precision}
    return {"precision": precision, "preferred_element_type": preferred_element_type}
