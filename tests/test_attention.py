"""Attention: dot_product_attention, masks, MultiHeadAttention (+ kv-cache decoding); Flax parity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx
from typed_jax import jit

import nnx

B, T, F, H = 2, 6, 8, 2
X = jax.random.normal(jax.random.key(0), (B, T, F))
CTX = jax.random.normal(jax.random.key(1), (B, 4, 5))


def qkv(seed: int = 0) -> tuple[jax.Array, jax.Array, jax.Array]:
    q, k, v = jax.random.split(jax.random.key(seed), 3)
    return (jax.random.normal(q, (B, T, H, 4)), jax.random.normal(k, (B, 5, H, 4)), jax.random.normal(v, (B, 5, H, 3)))


def test_dot_product_attention_is_softmax_weighted_values() -> None:
    q, k, v = qkv()
    # jnp.einsum has a partly unannotated signature (pyright reports it as unknown)
    weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / 2.0, axis=-1)  # pyright: ignore[reportUnknownMemberType]
    expected = jnp.einsum("bhqk,bkhd->bqhd", weights, v)  # pyright: ignore[reportUnknownMemberType]
    assert_close(nnx.dot_product_attention(q, k, v), expected, atol=1e-5)
    # (Flax hands equal key/value depths to jax.nn.dot_product_attention, so compare with v = k there)
    assert_close(nnx.dot_product_attention(q, k, k), fnnx.dot_product_attention(q, k, k), atol=1e-5)


def test_masks() -> None:
    causal = nnx.make_causal_mask(jnp.ones((B, T)))
    assert causal.shape == (B, 1, T, T)
    assert jnp.array_equal(causal[0, 0], jnp.tril(jnp.ones((T, T), bool)))
    tokens = jnp.array([[3, 4, 0], [5, 0, 0]])
    padding = nnx.make_attention_mask(tokens > 0, tokens > 0)
    assert padding.shape == (2, 1, 3, 3) and bool(padding[0, 0, 1, 1]) and not bool(padding[1, 0, 0, 1])
    both = nnx.combine_masks(padding, nnx.make_causal_mask(tokens))
    assert both is not None and not bool(both[0, 0, 0, 1]) and bool(both[0, 0, 1, 0])
    assert nnx.combine_masks(None, None) is None
    assert jnp.array_equal(causal, fnnx.make_causal_mask(jnp.ones((B, T))).astype(bool))


def test_masked_keys_get_no_weight_and_full_masks_give_no_nans() -> None:
    q, k, v = qkv()
    mask = jnp.arange(5) < 3  # keys 3 and 4 hidden
    out = nnx.dot_product_attention(q, k, v, mask=mask)
    assert_close(out, nnx.dot_product_attention(q, k[:, :3], v[:, :3]), atol=1e-5)
    assert not jnp.isnan(nnx.dot_product_attention(q, k, v, mask=jnp.zeros((5,), bool))).any()


def test_attention_dropout_needs_a_key() -> None:
    q, k, v = qkv()
    with pytest.raises(ValueError, match="needs dropout_rng"):
        nnx.dot_product_attention(q, k, v, dropout_rate=0.5)
    a = nnx.dot_product_attention(q, k, v, dropout_rate=0.5, dropout_rng=jax.random.key(0))
    assert not jnp.allclose(a, nnx.dot_product_attention(q, k, v))


def test_mha_shapes_and_errors() -> None:
    mha = nnx.MultiHeadAttention(H, F, qkv_features=12, out_features=3, rngs=nnx.Rngs(0))
    assert mha.query.kernel.shape == (F, H, 6) and mha.out.kernel.shape == (H, 6, 3)
    assert mha(X).shape == (B, T, 3)
    with pytest.raises(ValueError, match="qkv_features=7 is not divisible by num_heads=2"):
        nnx.MultiHeadAttention(2, 8, qkv_features=7, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"inputs_k has shape \(2, 4, 5\) but this layer expects 8"):
        mha(X, CTX)


@pytest.mark.parametrize("normalize_qk", [False, True])
def test_mha_matches_flax_self_and_cross_attention(normalize_qk: bool) -> None:
    kwargs = dict(normalize_qk=normalize_qk, decode=False)
    ours = nnx.MultiHeadAttention(H, F, in_kv_features=5, normalize_qk=normalize_qk, decode=False, rngs=nnx.Rngs(0))
    theirs = fnnx.MultiHeadAttention(H, F, in_kv_features=5, **kwargs, rngs=fnnx.Rngs(1))
    copy_from_flax(ours, theirs)
    mask = nnx.make_attention_mask(jnp.ones((B, T)), jnp.arange(4) < 3)
    assert_close(ours(X, CTX, mask=mask), theirs(X, CTX, mask=mask), atol=1e-5)
    self_attn = nnx.MultiHeadAttention(H, F, normalize_qk=normalize_qk, decode=False, rngs=nnx.Rngs(0))
    their_self = fnnx.MultiHeadAttention(H, F, **kwargs, rngs=fnnx.Rngs(1))
    copy_from_flax(self_attn, their_self)
    causal = nnx.make_causal_mask(jnp.ones((B, T)))
    assert_close(self_attn(X, mask=causal), their_self(X, mask=causal), atol=1e-5)


def test_decoding_with_the_cache_equals_the_causal_full_pass() -> None:
    mha = nnx.MultiHeadAttention(H, F, rngs=nnx.Rngs(0))
    full = mha(X, mask=nnx.make_causal_mask(jnp.ones((B, T))))
    mha.init_cache(X.shape)
    assert {p[0] for p in nnx.state(mha, nnx.Cache).paths} == {"cached_key", "cached_value", "cache_index"}
    steps = [mha(X[:, t : t + 1], decode=True) for t in range(T)]
    assert_close(jnp.concatenate(steps, axis=1), full, atol=1e-5)
    assert mha.cache_index is not None and int(mha.cache_index) == T
    # a prompt of 4 positions at once, then single steps: the same
    mha.init_cache(X.shape)
    chunked = [mha(X[:, :4], decode=True), mha(X[:, 4:5], decode=True), mha(X[:, 5:], decode=True)]
    assert_close(jnp.concatenate(chunked, axis=1), full, atol=1e-5)


def test_decoding_matches_flax_step_by_step() -> None:
    ours = nnx.MultiHeadAttention(H, F, decode=True, rngs=nnx.Rngs(0))
    theirs = fnnx.MultiHeadAttention(H, F, decode=True, rngs=fnnx.Rngs(1))
    ours.init_cache(X.shape)
    theirs.init_cache(X.shape)
    copy_from_flax(ours, theirs)
    for t in range(T):
        assert_close(ours(X[:, t : t + 1]), theirs(X[:, t : t + 1]), atol=1e-5)
    assert_close(ours.cached_key, theirs.cached_key[...])


def test_decoding_inside_jit_through_split_merge() -> None:
    mha = nnx.MultiHeadAttention(H, F, decode=True, rngs=nnx.Rngs(0))
    mha.init_cache(X.shape)
    graphdef, state = nnx.split(mha)

    @jit
    def step(state: nnx.State[nnx.MultiHeadAttention], x: jax.Array) -> tuple[jax.Array, nnx.State[nnx.MultiHeadAttention]]:
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    outs: list[jax.Array] = []
    for t in range(T):
        y, state = step(state, X[:, t : t + 1])
        outs.append(y)
    nnx.update(mha, state)
    assert mha.cache_index is not None and int(mha.cache_index) == T
    mha.decode = False
    assert_close(jnp.concatenate(outs, 1), mha(X, mask=nnx.make_causal_mask(jnp.ones((B, T)))), atol=1e-5)


def test_decode_errors() -> None:
    mha = nnx.MultiHeadAttention(H, F, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="call layer.init_cache"):
        mha(X[:, :1], decode=True)
    mha.init_cache((3, T, F))
    with pytest.raises(ValueError, match=r"the cache holds \(3, 6, 2, 4\).*new keys have shape \(2, 1, 2, 4\)"):
        mha(X[:, :1], decode=True)


def test_sow_weights_and_pop() -> None:
    mha = nnx.MultiHeadAttention(H, F, rngs=nnx.Rngs(0))
    mha(X, sow_weights=True)
    (weights,) = nnx.pop(mha, nnx.Intermediate).attention_weights
    assert weights.shape == (B, H, T, T)
    assert_close(weights.sum(-1), jnp.ones((B, H, T)), atol=1e-5)
    assert nnx.state(mha, nnx.Intermediate).paths == ()  # popped


def test_mha_dropout_follows_train_and_eval() -> None:
    mha = nnx.MultiHeadAttention(H, F, dropout_rate=0.5, rngs=nnx.Rngs(0))
    assert not jnp.allclose(mha(X), mha(X))  # training: a new mask each call
    mha.eval()
    assert jnp.allclose(mha(X), mha(X))


def test_mha_gradients() -> None:
    mha = nnx.MultiHeadAttention(2, 4, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(mha, jax.random.normal(jax.random.key(3), (1, 3, 4)))
