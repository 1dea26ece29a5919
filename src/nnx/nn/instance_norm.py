"""``InstanceNorm``: normalise each example's every channel over its remaining axes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Mapping

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, canonical_axes, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.nn.norm_stats import moments, normalize
from nnx.rngs import Rngs
from nnx.variables import Param



if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import InstanceNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class InstanceNorm(Module):
    """``(x - mean) / sqrt(var + epsilon) * scale + bias``, statistics per example and channel.

    Axis 0 is the batch; ``feature_axes`` (default the last) are the
    channels; the statistics are taken over every other axis (for images
    ``(N, H, W, C)``: over ``H`` and ``W``). It is ``GroupNorm`` with one
    channel per group, and needs no running state. ``mask`` (broadcastable to
    ``x``) leaves entries out of the statistics.
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
        rngs = layer_rngs("InstanceNorm", rngs, ctx, required=False)
        self.num_features = num_features
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_bias = use_bias
        self.use_scale = use_scale
        self.feature_axes = feature_axes
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.promote_dtype = promote_dtype
        self.use_fast_variance = use_fast_variance
        key = rngs.params() if rngs is not None else jax.random.key(0)  # the default initializers ignore it
        self.scale = Param(scale_init(key, (num_features,), param_dtype)) if use_scale else None
        if use_scale:
            record_metadata(self, "scale", scale_init, scale_metadata)
        self.bias = Param(bias_init(key, (num_features,), param_dtype)) if use_bias else None
        if use_bias:
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        feature_axes = canonical_axes(self.feature_axes, x.ndim)
        if 0 in feature_axes:
            raise ValueError(
                f"InstanceNorm(feature_axes={self.feature_axes!r}): axis 0 is the batch axis and cannot be a "
                "channel axis; put the channels on another axis (for (N, ..., C) inputs the default -1)."
            )
        reduction_axes = tuple(a for a in range(1, x.ndim) if a not in feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        mean, var = moments(
            x,
            reduction_axes,
            dtype=self.dtype,
            use_fast_variance=self.use_fast_variance,
            axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups,
            mask=mask,
        )
        return normalize(
            x,
            mean,
            var,
            scale,
            bias,
            feature_axes=feature_axes,
            epsilon=self.epsilon,
            dtype=self.dtype,
        )

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[InstanceNorm, InstanceNormState]
