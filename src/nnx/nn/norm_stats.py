"""Statistics and the affine step shared by the normalization layers.

``moments`` computes mean and variance over ``axes`` in at least float32 (so
bfloat16 inputs do not lose the statistics), keeping the reduced axes as size
1 so the results broadcast against the input. ``normalize`` applies
``(x - mean) * rsqrt(var + epsilon) * scale + bias``, with ``scale``/``bias``
laid out along the feature axes.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnx.nn.dtypes import Dtype
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param


def moments(
    x: jax.Array,
    axes: tuple[int, ...],
    *,
    dtype: Dtype | None = None,
    use_mean: bool = True,
    use_fast_variance: bool = True,
    axis_name: Hashable | None = None,
    axis_index_groups: Any = None,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of ``x`` over ``axes`` (kept as size-1 axes).

    They are computed in ``dtype`` (default: ``x``'s) or float32, whichever is
    wider, so half-precision layers keep full-precision statistics.
    ``use_mean=False`` (RMSNorm) returns a zero mean and the mean square as
    "variance". ``use_fast_variance`` uses ``E[x^2] - E[x]^2`` (one pass,
    clipped at 0), otherwise ``E[(x - E[x])^2]``. With ``axis_name`` the means
    are averaged across that mapped axis (data-parallel BatchNorm).
    """
    x = x.astype(jnp.promote_types(x.dtype if dtype is None else dtype, jnp.float32))

    def mean(v: jax.Array) -> jax.Array:
        m = jnp.mean(v, axes, keepdims=True, where=mask)
        if axis_name is not None:
            m = lax.pmean(m, axis_name, axis_index_groups=axis_index_groups)  # type: ignore[no-untyped-call]  # pyright: ignore[reportUnknownMemberType]  # jax: untyped
        return m

    if not use_mean:
        square = mean(jnp.square(x))
        return lax.full_like(square, 0), square
    mu = mean(x)
    if use_fast_variance:
        var = jnp.maximum(0.0, mean(jnp.square(x)) - jnp.square(mu))
    else:
        var = mean(jnp.square(x - mu))
    return mu, var


def feature_shape(shape: Sequence[int], feature_axes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a per-feature parameter: the sizes of the feature axes only."""
    return tuple(shape[a] for a in feature_axes)


def broadcast_shape(shape: Sequence[int], feature_axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with every non-feature axis set to 1, to broadcast per-feature values."""
    return tuple(n if a in feature_axes else 1 for a, n in enumerate(shape))


def normalize(
    x: jax.Array,
    mean: jax.Array,
    var: jax.Array,
    scale: jax.Array | None,
    bias: jax.Array | None,
    *,
    feature_axes: tuple[int, ...],
    epsilon: float,
    dtype: Dtype | None,
) -> jax.Array:
    """``(x - mean) * rsqrt(var + epsilon) * scale + bias``, cast to ``dtype`` (or the
    promoted dtype of ``x``, ``scale`` and ``bias``)."""
    target = broadcast_shape(x.shape, feature_axes)
    mul = lax.rsqrt(var + epsilon)
    if scale is not None:
        mul = mul * scale.reshape(target)
    y = (x - mean) * mul
    if bias is not None:
        y = y + bias.reshape(target)
    if dtype is None:
        dtype = jnp.result_type(*(a for a in (x, scale, bias) if a is not None))
    return y.astype(dtype)


def init_affine(
    module: Any,
    num_features: int,
    use_scale: bool,
    use_bias: bool,
    scale_init: Initializer,
    bias_init: Initializer,
    param_dtype: Dtype,
    rngs: Rngs | None,
    scale_metadata: Mapping[str, Any] = NO_METADATA,
    bias_metadata: Mapping[str, Any] = NO_METADATA,
) -> None:
    """Create ``module.scale`` / ``module.bias`` (``(num_features,)`` ``Param`` cells, or
    ``None`` when not asked for) from one key, recording the initializers' metadata and
    ``scale_metadata``/``bias_metadata`` on the cells."""
    key = rngs.params() if rngs is not None else jax.random.key(0)  # the default initializers ignore it
    module.scale = None
    if use_scale:
        module.scale = Param(scale_init(key, (num_features,), param_dtype))
        record_metadata(module, "scale", scale_init, scale_metadata)
    module.bias = None
    if use_bias:
        module.bias = Param(bias_init(key, (num_features,), param_dtype))
        record_metadata(module, "bias", bias_init, bias_metadata)
