"""``LayerNorm``: normalise each example over its feature axes."""

from __future__ import annotations

from typing import Any, Hashable, Mapping, TYPE_CHECKING

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, canonical_axes, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer
from nnx.nn.norm_stats import init_affine, moments, normalize
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import LayerNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class LayerNorm(Module):
    """``(x - mean) / sqrt(var + epsilon) * scale + bias`` with statistics over ``reduction_axes``.

    ``scale``/``bias`` have shape ``(num_features,)`` and apply along
    ``feature_axes`` (both default to the last axis). No running state: it
    behaves the same in training and evaluation.
    ``promote_dtype`` casts the input and parameters before the statistics
    (default: to ``dtype``, or their common dtype); ``scale_metadata``/``bias_metadata`` are set on the cells.
    """

    scale: Param[jax.Array] | None  # None with use_scale=False
    bias: Param[jax.Array] | None  # None with use_bias=False

    def __init__(
        self,
        num_features: int,
        *,
        epsilon: float = 1e-6,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        use_bias: bool = True,
        use_scale: bool = True,
        bias_init: Initializer = initializers.zeros,
        scale_init: Initializer = initializers.ones,
        reduction_axes: int | tuple[int, ...] = -1,
        feature_axes: int | tuple[int, ...] = -1,
        axis_name: Hashable | None = None,
        axis_index_groups: Any = None,
        use_fast_variance: bool = True,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        scale_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("LayerNorm", rngs, ctx, required=False)
        self.num_features = num_features
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_bias = use_bias
        self.use_scale = use_scale
        self.reduction_axes = reduction_axes
        self.feature_axes = feature_axes
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.promote_dtype = promote_dtype
        self.use_fast_variance = use_fast_variance
        init_affine(
            self, num_features, use_scale, use_bias, scale_init, bias_init, param_dtype, rngs, scale_metadata, bias_metadata
        )

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        mean, var = moments(
            x,
            canonical_axes(self.reduction_axes, x.ndim),
            dtype=self.dtype,
            use_fast_variance=self.use_fast_variance,
            axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups,
            mask=mask,
        )
        feature_axes = canonical_axes(self.feature_axes, x.ndim)
        return normalize(x, mean, var, scale, bias, feature_axes=feature_axes, epsilon=self.epsilon, dtype=self.dtype)

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[LayerNorm, LayerNormState]
