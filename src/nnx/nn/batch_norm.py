"""``BatchNorm``: normalise with batch statistics while training, running averages in eval."""

from __future__ import annotations

from typing import Any, Hashable, Mapping, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, call_flag, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, canonical_axes, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.nn.norm_stats import broadcast_shape, moments, normalize
from nnx.rngs import Rngs
from nnx.variables import BatchStat, Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import BatchNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class BatchNorm(Module):
    """Batch normalization over every axis but ``axis`` (the feature axis).

    In training mode (``use_running_average=False``, what ``model.train()``
    sets) it normalises with the batch's mean and variance and moves the
    running averages ``mean``/``var`` (``BatchStat`` cells) towards them:
    ``running = momentum * running + (1 - momentum) * batch``. In evaluation
    mode (``model.eval()``) it uses the running averages and changes nothing.
    ``axis_name`` averages the statistics across a ``vmap``/``pmap`` axis.
    ``promote_dtype`` casts the input and parameters before the statistics
    (default: to ``dtype``, or their common dtype); ``scale_metadata``/``bias_metadata`` are set on the cells.
    """

    scale: Param[jax.Array] | None  # None with use_scale=False
    bias: Param[jax.Array] | None  # None with use_bias=False
    mean: BatchStat[jax.Array]
    var: BatchStat[jax.Array]

    def __init__(
        self,
        num_features: int,
        *,
        use_running_average: bool = False,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-5,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        use_bias: bool = True,
        use_scale: bool = True,
        bias_init: Initializer = initializers.zeros,
        scale_init: Initializer = initializers.ones,
        axis_name: Hashable | None = None,
        axis_index_groups: Any = None,
        use_fast_variance: bool = True,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        scale_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("BatchNorm", rngs, ctx, required=False)
        self.num_features = num_features
        self.use_running_average = use_running_average
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.use_bias = use_bias
        self.use_scale = use_scale
        self.axis_name = axis_name
        self.axis_index_groups = axis_index_groups
        self.promote_dtype = promote_dtype
        self.use_fast_variance = use_fast_variance
        shape = (num_features,)
        self.mean = BatchStat(lax.full(shape, 0.0, jnp.float32))
        self.var = BatchStat(lax.full(shape, 1.0, jnp.float32))
        key = jax.random.key(0)  # the default initializers ignore it; rngs is optional
        self.scale = None
        if use_scale:
            self.scale = Param(scale_init(rngs.params() if rngs is not None else key, shape, param_dtype))
            record_metadata(self, "scale", scale_init, scale_metadata)
        self.bias = None
        if use_bias:
            self.bias = Param(bias_init(rngs.params() if rngs is not None else key, shape, param_dtype))
            record_metadata(self, "bias", bias_init, bias_metadata)

    def __call__(
        self,
        x: jax.Array,
        use_running_average: bool | None = None,
        *,
        mask: jax.Array | None = None,
        ctx: Context | None = None,
    ) -> jax.Array:
        """Normalise ``x``; ``use_running_average`` (or the flag of that name in
        ``ctx=nnx.context(flags=...)``) overrides the attribute for this call."""
        use_running_average = call_flag("use_running_average", use_running_average, ctx, self.use_running_average)
        feature_axes = canonical_axes(self.axis, x.ndim)
        if x.shape[feature_axes[0]] != self.num_features:
            raise ValueError(
                f"BatchNorm(num_features={self.num_features}) got an input of shape {x.shape} whose "
                f"axis {self.axis} has {x.shape[feature_axes[0]]} features; pass inputs with "
                f"{self.num_features} features there or build BatchNorm({x.shape[feature_axes[0]]})."
            )
        target = broadcast_shape(x.shape, feature_axes)
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, mean, var, scale, bias = self.promote_dtype(
            (x, self.mean[...], self.var[...], scale, bias), dtype=self.dtype
        )
        if use_running_average:
            mean, var = mean.reshape(target), var.reshape(target)
        else:
            reduction_axes = tuple(a for a in range(x.ndim) if a not in feature_axes)
            mean, var = moments(
                x,
                reduction_axes,
                dtype=self.dtype,
                use_fast_variance=self.use_fast_variance,
                axis_name=self.axis_name,
                axis_index_groups=self.axis_index_groups,
                mask=mask,
            )
            m = self.momentum
            self.mean.value = m * self.mean[...] + (1 - m) * mean.reshape(self.mean.shape)
            self.var.value = m * self.var[...] + (1 - m) * var.reshape(self.var.shape)
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

    def set_view(self, use_running_average: bool | None = None) -> None:
        """What ``nnx.view`` sets on this layer.

        Args:
          use_running_average: if True, normalise with the running statistics and leave them
            unchanged (evaluation); if False, use and update the batch statistics.
        """
        if use_running_average is not None:
            self.use_running_average = use_running_average

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[BatchNorm, BatchNormState]
