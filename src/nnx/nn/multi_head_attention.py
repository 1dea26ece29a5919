"""``MultiHeadAttention``: projections to heads, attention, projection back; with a kv-cache."""

from __future__ import annotations

from typing import Any, Callable, Mapping, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, call_flag, call_rngs, draw_key, forked_stream, layer_rngs
from nnx.nn.attention import combine_masks, dot_product_attention
from nnx.nn.dtypes import Dtype
from nnx.nn.layer_norm import LayerNorm
from nnx.nn.linear import default_bias_init, default_kernel_init
from nnx.nn.linear_general import LinearGeneral
from nnx.nn.metadata import NO_METADATA, Initializer
from nnx.rngs import Rngs, RngStream
from nnx.variables import Cache, Intermediate

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import MultiHeadAttentionState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

AttentionFn = Callable[..., jax.Array]


class MultiHeadAttention(Module):
    """Multi-head attention: ``out(attention(query(x_q), key(x_k), value(x_v)))``.

    ``query``/``key``/``value`` are ``LinearGeneral`` layers to
    ``(num_heads, qkv_features // num_heads)``; ``out`` maps the heads back to
    ``out_features``. ``mask`` is boolean, broadcasting to
    ``(..., num_heads, q_len, kv_len)`` (see ``make_causal_mask``), and
    ``is_causal=True`` on a call adds the causal mask. ``num_kv_heads``
    (dividing ``num_heads``) gives ``key``/``value`` fewer heads than
    ``query``: grouped-query attention, with a smaller kv-cache.
    ``keep_rngs=False`` keeps no dropout stream on the layer (pass ``rngs=``
    to each call instead). ``kernel_metadata``, ``bias_metadata``,
    ``out_kernel_metadata``, ``out_bias_metadata`` (default: the first two)
    and ``query_ln_scale_metadata``/``key_ln_scale_metadata`` are set on the cells.

    Autoregressive decoding: call ``init_cache(input_shape)`` once (the shape
    of a full-length input), then call with ``decode=True`` (or set
    ``model.set_attributes(decode=True)``) on one or more new positions at a
    time. Keys and values are written into the ``Cache`` cells
    ``cached_key``/``cached_value`` at ``cache_index``, and each new query
    attends to every cached position up to its own, so decoding step by step
    gives the same result as a causal full-length pass.
    """

    # ``Cache`` cells once ``init_cache`` has run, ``None`` before.
    cached_key: Cache[jax.Array] | None
    cached_value: Cache[jax.Array] | None
    cache_index: Cache[jax.Array] | None
    if TYPE_CHECKING:  # sown by ``dot_product_attention(module=self)`` on a call with sow_weights=True
        attention_weights: Intermediate[tuple[jax.Array, ...]]

    def __init__(
        self,
        num_heads: int,
        in_features: int,
        qkv_features: int | None = None,
        out_features: int | None = None,
        in_kv_features: int | None = None,
        *,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        broadcast_dropout: bool = True,
        dropout_rate: float = 0.0,
        deterministic: bool = False,
        precision: lax.PrecisionLike = None,
        kernel_init: Initializer = default_kernel_init,
        out_kernel_init: Initializer | None = None,
        bias_init: Initializer = default_bias_init,
        out_bias_init: Initializer | None = None,
        use_bias: bool = True,
        attention_fn: AttentionFn = dot_product_attention,
        decode: bool = False,
        normalize_qk: bool = False,
        num_kv_heads: int | None = None,
        keep_rngs: bool = True,
        kernel_metadata: Mapping[str, Any] = NO_METADATA,
        bias_metadata: Mapping[str, Any] = NO_METADATA,
        out_kernel_metadata: Mapping[str, Any] | None = None,
        out_bias_metadata: Mapping[str, Any] | None = None,
        query_ln_scale_metadata: Mapping[str, Any] = NO_METADATA,
        key_ln_scale_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("MultiHeadAttention", rngs, ctx)
        qkv_features = qkv_features if qkv_features is not None else in_features
        if qkv_features % num_heads:
            raise ValueError(
                f"MultiHeadAttention: qkv_features={qkv_features} is not divisible by num_heads={num_heads}; "
                "pick a multiple of num_heads."
            )
        num_kv_heads = num_kv_heads if num_kv_heads is not None else num_heads
        if num_kv_heads <= 0 or num_heads % num_kv_heads:
            raise ValueError(
                f"MultiHeadAttention: num_heads={num_heads} must be a multiple of num_kv_heads={num_kv_heads} "
                "(each key/value head serves an equal group of query heads)."
            )
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.in_features = in_features
        self.qkv_features = qkv_features
        self.out_features = out_features if out_features is not None else in_features
        self.in_kv_features = in_kv_features if in_kv_features is not None else in_features
        self.head_dim = qkv_features // num_heads
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.broadcast_dropout = broadcast_dropout
        self.dropout_rate = dropout_rate
        self.deterministic = deterministic
        self.precision = precision
        self.attention_fn = attention_fn
        self.decode = decode
        self.normalize_qk = normalize_qk

        def project(features: int, heads: int) -> LinearGeneral:
            return LinearGeneral(
                features,
                (heads, self.head_dim),
                use_bias=use_bias,
                dtype=dtype,
                param_dtype=param_dtype,
                precision=precision,
                kernel_init=kernel_init,
                bias_init=bias_init,
                kernel_metadata=kernel_metadata,
                bias_metadata=bias_metadata,
                rngs=rngs,
            )

        self.query = project(in_features, num_heads)
        self.key = project(self.in_kv_features, num_kv_heads)
        self.value = project(self.in_kv_features, num_kv_heads)
        self.out = LinearGeneral(
            (num_heads, self.head_dim),
            self.out_features,
            axis=(-2, -1),
            use_bias=use_bias,
            dtype=dtype,
            param_dtype=param_dtype,
            precision=precision,
            kernel_init=out_kernel_init if out_kernel_init is not None else kernel_init,
            bias_init=out_bias_init if out_bias_init is not None else bias_init,
            kernel_metadata=out_kernel_metadata if out_kernel_metadata is not None else kernel_metadata,
            bias_metadata=out_bias_metadata if out_bias_metadata is not None else bias_metadata,
            rngs=rngs,
        )
        if normalize_qk:
            # Per-head LayerNorm of queries and keys (stabilises large-scale training).
            def norm(metadata: Mapping[str, Any]) -> LayerNorm:
                return LayerNorm(
                    self.head_dim,
                    use_bias=False,
                    dtype=dtype,
                    param_dtype=param_dtype,
                    scale_metadata=metadata,
                    rngs=rngs,
                )

            self.query_ln = norm(query_ln_scale_metadata)
            self.key_ln = norm(key_ln_scale_metadata)
        self.cached_key = self.cached_value = self.cache_index = None
        keep = keep_rngs and dropout_rate > 0.0
        self.rngs: RngStream | None = forked_stream(rngs, "dropout") if keep else None

    def set_view(
        self,
        deterministic: bool | None = None,
        decode: bool | None = None,
        batch_size: int | tuple[int, ...] | None = None,
        max_length: int | None = None,
    ) -> None:
        """What ``nnx.view`` sets on this layer.

        Args:
          deterministic: if True, no attention dropout (evaluation).
          decode: if True, calls decode step by step against the kv-cache.
          batch_size: with max_length (and decode=True), the batch shape of a fresh cache.
          max_length: with batch_size (and decode=True), the length of a fresh cache.
        """
        if deterministic is not None:
            self.deterministic = deterministic
        if decode is not None:
            self.decode = decode
        if (batch_size is None) != (max_length is None):
            raise ValueError(
                f"MultiHeadAttention.set_view: give batch_size and max_length together to make a cache "
                f"(got batch_size={batch_size!r}, max_length={max_length!r})."
            )
        if batch_size is not None and max_length is not None and self.decode:
            batch = (batch_size,) if isinstance(batch_size, int) else tuple(batch_size)
            self.init_cache((*batch, max_length, self.in_features), self.dtype or jnp.float32)

    def init_cache(self, input_shape: tuple[int, ...], dtype: Dtype = jnp.float32) -> None:
        """Create empty ``Cache`` cells for inputs of shape ``(*batch, max_length, in_features)``."""
        *batch, max_length, _ = input_shape
        shape = (*batch, max_length, self.num_kv_heads, self.head_dim)
        self.cached_key = Cache(lax.full(shape, 0, dtype))
        self.cached_value = Cache(lax.full(shape, 0, dtype))
        self.cache_index = Cache(lax.full((), 0, jnp.int32))

    def __call__(
        self,
        inputs_q: jax.Array,
        inputs_k: jax.Array | None = None,
        inputs_v: jax.Array | None = None,
        *,
        mask: jax.Array | None = None,
        deterministic: bool | None = None,
        rngs: Rngs | RngStream | jax.Array | None = None,
        ctx: Context | None = None,
        sow_weights: bool = False,
        decode: bool | None = None,
        is_causal: bool = False,
    ) -> jax.Array:
        """Attend from ``inputs_q`` to ``inputs_k``/``inputs_v`` (default: self-attention);
        ``is_causal`` lets each query see only the keys up to its own position."""
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        for name, x, size in (("inputs_q", inputs_q, self.in_features), ("inputs_k", inputs_k, self.in_kv_features)):
            if x.shape[-1] != size:
                raise ValueError(
                    f"MultiHeadAttention: {name} has shape {x.shape} but this layer expects {size} features "
                    "on its last axis."
                )
        query, key, value = self.query(inputs_q), self.key(inputs_k), self.value(inputs_v)
        if self.normalize_qk:
            query, key = self.query_ln(query), self.key_ln(key)
        if decode if decode is not None else self.decode:
            key, value, mask = self._extend_cache(key, value, mask)
        deterministic = call_flag("deterministic", deterministic, ctx, self.deterministic)
        dropout_rng = None
        if self.dropout_rate > 0.0 and not deterministic:
            stream_owner = call_rngs(rngs, ctx, self.rngs)
            if stream_owner is None:
                raise ValueError(
                    "MultiHeadAttention with dropout needs random keys: pass rngs= (or ctx=) when "
                    "building it (without keep_rngs=False) or when calling it, or pass "
                    "deterministic=True / call model.eval()."
                )
            dropout_rng = draw_key(stream_owner, "dropout", "MultiHeadAttention")
        x = self.attention_fn(
            query,
            key,
            value,
            mask=mask,
            dropout_rng=dropout_rng,
            dropout_rate=self.dropout_rate,
            broadcast_dropout=self.broadcast_dropout,
            deterministic=deterministic,
            dtype=self.dtype,
            precision=self.precision,
            module=self if sow_weights else None,
            **({"is_causal": True} if is_causal else {}),  # a custom attention_fn need not take it
        )
        return self.out(x)

    def _extend_cache(
        self, key: jax.Array, value: jax.Array, mask: jax.Array | None
    ) -> tuple[jax.Array, jax.Array, Any]:
        """Write the new keys/values at ``cache_index``; return the full cache and its mask."""
        cached_key, cached_value, cache_index = self.cached_key, self.cached_value, self.cache_index
        if cached_key is None or cached_value is None or cache_index is None:
            raise ValueError(
                "MultiHeadAttention(decode=True) has no cache; call "
                "layer.init_cache((batch, max_length, in_features)) first."
            )
        *batch, max_length, heads, depth = cached_key.shape
        steps = key.shape[-3]
        if tuple(key.shape) != (*batch, steps, heads, depth):
            raise ValueError(
                f"MultiHeadAttention decode: the cache holds {tuple(cached_key.shape)} (batch, "
                f"max_length, heads, head_dim) but the new keys have shape {tuple(key.shape)}; "
                "decode with the batch shape init_cache was given."
            )
        index = cache_index.value
        zero = lax.full((), 0, jnp.int32)
        start = [zero] * len(batch) + [index, zero, zero]
        cached_key.value = lax.dynamic_update_slice(cached_key.value, key.astype(cached_key.dtype), start)
        cached_value.value = lax.dynamic_update_slice(cached_value.value, value.astype(cached_value.dtype), start)
        cache_index.value = index + steps
        query_positions = index + jnp.arange(steps)
        visible = jnp.arange(max_length)[None, :] <= query_positions[:, None]
        visible = jnp.broadcast_to(visible, (*batch, 1, steps, max_length))
        return cached_key.value, cached_value.value, combine_masks(mask, visible)

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[MultiHeadAttention, MultiHeadAttentionState]
