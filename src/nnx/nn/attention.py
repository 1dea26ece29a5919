"""Scaled dot-product attention and the masks that go with it.

Shapes follow the ``(..., length, heads, head_dim)`` convention: queries
``(..., q_len, heads, d)``, keys ``(..., kv_len, heads, d)``, values
``(..., kv_len, heads, v)``. Masks are boolean (True = may attend) and
broadcast to ``(..., heads, q_len, kv_len)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.variables import Intermediate


def check_qkv(query: jax.Array, key: jax.Array, value: jax.Array | None = None) -> int:
    """Check that query, key (and value) shapes fit together; return how many query heads
    share each key/value head (1 for plain multi-head attention, more for grouped-query)."""
    named = [("query", query), ("key", key)] + ([("value", value)] if value is not None else [])
    shapes = ", ".join(f"{n} {a.shape}" for n, a in named)
    if len({a.ndim for _, a in named}) != 1:
        raise ValueError(f"dot_product_attention: {shapes} must have the same rank (..., length, heads, depth).")
    if len({a.shape[:-3] for _, a in named}) != 1:
        raise ValueError(f"dot_product_attention: {shapes}: the batch dims (all but the last three) must match.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"dot_product_attention: {shapes}: query and key depths must match (last axis).")
    if value is not None and key.shape[-3] != value.shape[-3]:
        raise ValueError(f"dot_product_attention: {shapes}: key and value lengths must match (axis -3).")
    if value is not None and key.shape[-2] != value.shape[-2]:
        raise ValueError(f"dot_product_attention: {shapes}: key and value must have the same number of heads.")
    q_heads, kv_heads = query.shape[-2], key.shape[-2]
    if q_heads % kv_heads:
        raise ValueError(
            f"dot_product_attention: {shapes}: the query heads ({q_heads}) must be a multiple of the "
            f"key/value heads ({kv_heads}) for grouped-query attention."
        )
    return q_heads // kv_heads


def causal_mask(q_len: int, kv_len: int) -> jax.Array:
    """The ``(q_len, kv_len)`` mask letting query ``i`` see keys ``0..i`` (lower triangle)."""
    return jnp.arange(kv_len)[None, :] <= jnp.arange(q_len)[:, None]


def dot_product_attention_weights(
    query: jax.Array,
    key: jax.Array,
    bias: jax.Array | None = None,
    mask: jax.Array | None = None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    broadcast_dropout: bool = True,
    deterministic: bool = False,
    dtype: Dtype | None = None,
    precision: lax.PrecisionLike = None,
    module: Any = None,
    promote_dtype: PromoteDtypeFn = promote_dtype,
    is_causal: bool = False,
) -> jax.Array:
    """``softmax(q . k / sqrt(d) + bias)`` over keys, masked, with optional dropout.

    Masked positions get the most negative finite value before the softmax,
    so a fully masked row gives uniform weights rather than NaNs.
    ``is_causal`` also masks every key after the query's own position (query
    ``i`` sees keys ``0..i``). Keys may have fewer heads than queries
    (grouped-query attention): query head ``h`` then attends with key head
    ``h // (q_heads // kv_heads)``. With a ``module``, the weights
    ``(..., q_heads, q_len, kv_len)`` are sown on it as ``Intermediate`` ``"attention_weights"``.
    """
    group = check_qkv(query, key)
    query, key = promote_dtype((query, key), dtype=dtype)
    if group > 1:
        key = jnp.repeat(key, group, axis=-2)
    query = query / math.sqrt(query.shape[-1])  # a Python float keeps the query's dtype
    weights = jnp.einsum("...qhd,...khd->...hqk", query, key, precision=precision)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
    if bias is not None:
        weights = weights + bias
    if is_causal:
        causal = causal_mask(*weights.shape[-2:])
        mask = causal if mask is None else jnp.logical_and(mask, causal)
    if mask is not None:
        lowest = jnp.finfo(weights.dtype).min  # type: ignore[no-untyped-call]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: untyped finfo
        weights = jnp.where(mask, weights, lowest)  # pyright: ignore[reportUnknownArgumentType]
    weights = jax.nn.softmax(weights, axis=-1)
    if module is not None:
        module.sow(Intermediate, "attention_weights", weights)
    if not deterministic and dropout_rate > 0.0:
        if dropout_rng is None:
            raise ValueError("dot_product_attention: dropout_rate > 0 and not deterministic needs dropout_rng.")
        keep_prob = 1.0 - dropout_rate
        shape = (*weights.shape[:-2], 1, weights.shape[-1]) if broadcast_dropout else weights.shape
        keep = jax.random.bernoulli(dropout_rng, keep_prob, shape)
        weights = weights * (keep / keep_prob).astype(weights.dtype)
    return weights


def dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    bias: jax.Array | None = None,
    mask: jax.Array | None = None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    broadcast_dropout: bool = True,
    deterministic: bool = False,
    dtype: Dtype | None = None,
    precision: lax.PrecisionLike = None,
    module: Any = None,
    promote_dtype: PromoteDtypeFn = promote_dtype,
    is_causal: bool = False,
) -> jax.Array:
    """Attention output ``weights @ value``, shape ``(..., q_len, q_heads, v)``.

    ``is_causal`` and grouped-query attention (fewer key/value heads than
    query heads) are as in :func:`dot_product_attention_weights`.
    """
    group = check_qkv(query, key, value)
    weights = dot_product_attention_weights(
        query,
        key,
        bias,
        mask,
        dropout_rate=dropout_rate,
        dropout_rng=dropout_rng,
        broadcast_dropout=broadcast_dropout,
        deterministic=deterministic,
        dtype=dtype,
        precision=precision,
        module=module,
        promote_dtype=promote_dtype,
        is_causal=is_causal,
    )
    weights, value = promote_dtype((weights, value), dtype=dtype)
    if group > 1:
        value = jnp.repeat(value, group, axis=-2)
    return jnp.einsum("...hqk,...khd->...qhd", weights, value, precision=precision)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature


def make_attention_mask(
    query_input: jax.Array,
    key_input: jax.Array,
    pairwise_fn: Callable[[jax.Array, jax.Array], jax.Array] = jnp.logical_and,
    extra_batch_dims: int = 0,
    dtype: Dtype = jnp.bool_,
) -> jax.Array:
    """A ``(..., 1, q_len, kv_len)`` mask ``pairwise_fn(query_input[q], key_input[k])``.

    ``make_attention_mask(tokens > 0, tokens > 0)`` masks padding.
    """
    mask = pairwise_fn(query_input[..., :, None], key_input[..., None, :])
    mask = mask[..., None, :, :]
    return mask.reshape((1,) * extra_batch_dims + mask.shape).astype(dtype)


def make_causal_mask(x: jax.Array, extra_batch_dims: int = 0, dtype: Dtype = jnp.bool_) -> jax.Array:
    """The mask letting position ``q`` attend to positions ``<= q`` along the last axis of ``x``."""
    positions = lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)  # pyright: ignore[reportUnknownMemberType]  # jax: partly untyped signature
    return make_attention_mask(positions, positions, jnp.greater_equal, extra_batch_dims, dtype)


def combine_masks(*masks: jax.Array | None, dtype: Dtype = jnp.bool_) -> jax.Array | None:
    """Logical AND of the masks that are not ``None`` (``None`` if all are)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    ndims = {m.ndim for m in present}
    if len(ndims) != 1:
        raise ValueError(f"combine_masks: masks must have the same rank, got shapes {[m.shape for m in present]}.")
    combined = present[0].astype(jnp.bool_)
    for m in present[1:]:
        combined = jnp.logical_and(combined, m.astype(jnp.bool_))
    return combined.astype(dtype)
