"""``GroupNorm``: normalise each example over groups of channels (and all spatial axes)."""

from __future__ import annotations

from typing import Any, Hashable, Mapping, TYPE_CHECKING

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer
from nnx.nn.norm_stats import init_affine, moments, normalize
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import GroupNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class GroupNorm(Module):
    """The ``num_features`` channels (last axis) are split into ``num_groups`` groups
    of ``group_size``; each example is normalised per group over the group's
    channels and ``reduction_axes`` (default: every axis but the first, the batch).

    Give exactly one of ``num_groups`` and ``group_size``. ``num_groups=1`` is
    LayerNorm over all non-batch axes; ``group_size=1`` is InstanceNorm.
    ``promote_dtype`` casts the input and parameters before the statistics
    (default: to ``dtype``, or their common dtype); ``scale_metadata``/``bias_metadata`` are set on the cells.
    """

    scale: Param[jax.Array] | None  # None with use_scale=False
    bias: Param[jax.Array] | None  # None with use_bias=False

    def __init__(
        self,
        num_features: int,
        num_groups: int | None = 32,
        group_size: int | None = None,
        *,
        epsilon: float = 1e-6,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        use_bias: bool = True,
        use_scale: bool = True,
        bias_init: Initializer = initializers.zeros,
        scale_init: Initializer = initializers.ones,
        reduction_axes: tuple[int, ...] | None = None,
        axis_name: Hashable | None = None,
        axis_index_groups: Any = None,
        use_fast_variance: bool = True,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        scale_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("GroupNorm", rngs, ctx, required=False)
        if (num_groups is None) == (group_size is None):
            raise ValueError(
                f"GroupNorm(num_groups={num_groups}, group_size={group_size}): give exactly one of them."
            )
        if group_size is not None:
            num_groups = num_features // group_size
        assert num_groups is not None
        if num_groups <= 0 or num_features % num_groups:
            raise ValueError(
                f"GroupNorm: {num_features} features cannot be split into {num_groups} equal groups; "
                "pick num_groups (or group_size) dividing num_features."
            )
        self.num_features = num_features
        self.num_groups = num_groups
        self.group_size = num_features // num_groups
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_bias = use_bias
        self.use_scale = use_scale
        self.reduction_axes = reduction_axes
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.promote_dtype = promote_dtype
        self.use_fast_variance = use_fast_variance
        init_affine(
            self, num_features, use_scale, use_bias, scale_init, bias_init, param_dtype, rngs, scale_metadata, bias_metadata
        )

    def __call__(self, x: jax.Array, *, mask: jax.Array | None = None) -> jax.Array:
        if x.shape[-1] != self.num_features:
            raise ValueError(
                f"GroupNorm(num_features={self.num_features}) got an input of shape {x.shape}; "
                f"its last axis must have {self.num_features} channels."
            )
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        # Reduce over the chosen axes plus the within-group channel axis, in a view
        # (..., num_groups, group_size); then broadcast the statistics back to channels.
        grouped = x.reshape((*x.shape[:-1], self.num_groups, self.group_size))
        axes = self.reduction_axes if self.reduction_axes is not None else tuple(range(1, x.ndim - 1))
        axes = tuple(a % x.ndim for a in axes if a % x.ndim != x.ndim - 1) + (x.ndim,)
        group_mask = None if mask is None else jnp.broadcast_to(mask, x.shape).reshape(grouped.shape)
        mean, var = moments(
            grouped,
            axes,
            dtype=self.dtype,
            use_fast_variance=self.use_fast_variance,
            axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups,
            mask=group_mask,
        )
        mean = jnp.broadcast_to(mean, grouped.shape).reshape(x.shape)
        var = jnp.broadcast_to(var, grouped.shape).reshape(x.shape)
        return normalize(
            x,
            mean,
            var,
            scale,
            bias,
            feature_axes=(x.ndim - 1,),
            epsilon=self.epsilon,
            dtype=self.dtype,
        )

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[GroupNorm, GroupNormState]
