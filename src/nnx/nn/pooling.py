"""Pooling over the spatial axes of channels-last inputs: ``max_pool``, ``min_pool``, ``avg_pool``.

Inputs are ``(*batch, *spatial, features)`` with as many spatial axes as
``window_shape`` has entries; windows never span batch or feature axes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from nnx.nn.conv_common import PaddingLike, lax_padding


def pool(
    x: jax.Array,
    init_value: Any,
    reduce_fn: Callable[[Any, Any], Any],
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: PaddingLike = "VALID",
) -> jax.Array:
    """Reduce every window of ``x`` with ``reduce_fn`` starting from ``init_value``."""
    window = tuple(window_shape)
    n = len(window)
    where = f"pool(window_shape={window})"
    if x.ndim < n + 1:
        raise ValueError(f"{where}: expected an input (*batch, *{n} spatial axes, features), got shape {x.shape}.")
    steps = tuple(strides) if strides is not None else (1,) * n
    if len(steps) != n:
        raise ValueError(f"{where}: strides={steps} has {len(steps)} entries for {n} spatial axes; give {n}.")
    batch = x.ndim - n - 1
    pads = lax_padding(padding, n, where)
    if pads in ("CIRCULAR", "CAUSAL"):
        raise ValueError(f"{where}: padding={padding!r} is for convolutions; pooling takes 'SAME', 'VALID' or pairs.")
    full_pads = pads if isinstance(pads, str) else [(0, 0)] * batch + pads + [(0, 0)]
    pooled: jax.Array = lax.reduce_window(  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
        x, init_value, reduce_fn, (1,) * batch + window + (1,), (1,) * batch + steps + (1,), full_pads
    )
    return pooled


def max_pool(
    x: jax.Array, window_shape: Sequence[int], strides: Sequence[int] | None = None, padding: PaddingLike = "VALID"
) -> jax.Array:
    """The maximum of every window (padding counts as ``-inf``)."""
    return pool(x, -jnp.inf, lax.max, window_shape, strides, padding)


def min_pool(
    x: jax.Array, window_shape: Sequence[int], strides: Sequence[int] | None = None, padding: PaddingLike = "VALID"
) -> jax.Array:
    """The minimum of every window (padding counts as ``+inf``)."""
    return pool(x, jnp.inf, lax.min, window_shape, strides, padding)


def avg_pool(
    x: jax.Array,
    window_shape: Sequence[int],
    strides: Sequence[int] | None = None,
    padding: PaddingLike = "VALID",
    count_include_pad: bool = True,
) -> jax.Array:
    """The mean of every window; ``count_include_pad=False`` divides by the real
    (unpadded) element count at the borders."""
    sums = pool(x, 0.0, lax.add, window_shape, strides, padding)
    if count_include_pad:
        return sums / math.prod(window_shape)
    # Count the real elements of each window by pooling ones over the spatial axes only.
    ones = lax.full((*x.shape[-len(window_shape) - 1 : -1], 1), 1, x.dtype)
    return sums / pool(ones, 0.0, lax.add, window_shape, strides, padding)
