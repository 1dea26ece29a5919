"""nnx.LinearGeneral, nnx.Einsum and nnx.Embed: shapes, errors, gradients, parity with Flax NNX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx

X = jax.random.normal(jax.random.key(0), (2, 5, 4, 3))


def test_linear_general_contracts_several_axes() -> None:
    layer = nnx.LinearGeneral((4, 3), (2, 6), axis=(-2, -1), rngs=nnx.Rngs(0))
    assert layer.bias is not None  # None only without a bias
    assert layer.kernel.shape == (4, 3, 2, 6) and layer.bias.shape == (2, 6)
    y = layer(X)
    assert y.shape == (2, 5, 2, 6)
    assert_close(y, jnp.einsum("bthd,hdok->btok", X, layer.kernel) + layer.bias, atol=1e-5)  # pyright: ignore[reportUnknownMemberType]  # jnp.einsum: partly unannotated


def test_linear_general_axis_order_follows_in_features() -> None:
    layer = nnx.LinearGeneral((3, 4), 2, axis=(-1, -2), rngs=nnx.Rngs(0))
    assert layer.bias is not None
    assert_close(layer(X), jnp.einsum("bthd,dho->bto", X, layer.kernel) + layer.bias, atol=1e-5)  # pyright: ignore[reportUnknownMemberType]  # jnp.einsum: partly unannotated


def test_linear_general_errors_name_the_mismatch() -> None:
    with pytest.raises(ValueError, match=r"axis=\(-1,\) names 1 input axes"):
        nnx.LinearGeneral((4, 3), 2, rngs=nnx.Rngs(0))
    layer = nnx.LinearGeneral((4, 3), 2, axis=(-2, -1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"have sizes \(5, 4\)"):
        layer(X[..., 0])


def test_linear_general_gradients_and_flax_parity() -> None:
    ours = nnx.LinearGeneral((4, 3), (2, 2), axis=(1, 2), bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(ours, X[:, 0])
    theirs = fnnx.LinearGeneral((4, 3), (2, 2), axis=(1, 2), rngs=fnnx.Rngs(1))
    copy_from_flax(ours, theirs)
    assert_close(ours(X[:, 0]), theirs(X[:, 0]))


def test_einsum_layer() -> None:
    layer = nnx.Einsum("bthd,hdk->btk", (4, 3, 7), (7,), bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    y = layer(X)
    assert y.shape == (2, 5, 7) and layer.bias is not None
    assert_close(y, jnp.einsum("bthd,hdk->btk", X, layer.kernel) + layer.bias, atol=1e-5)  # pyright: ignore[reportUnknownMemberType]  # jnp.einsum: partly unannotated
    check_layer_grads(layer, X[:1, :2])
    theirs = fnnx.Einsum("bthd,hdk->btk", (4, 3, 7), (7,), rngs=fnnx.Rngs(1))
    copy_from_flax(layer, theirs)
    assert_close(layer(X), theirs(X))


def test_einsum_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="two operands and an explicit output"):
        nnx.Einsum("ab,bc", (2, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"kernel spec 'bc' has 2 axes but kernel_shape=\(2, 3, 4\)"):
        nnx.Einsum("ab,bc->ac", (2, 3, 4), rngs=nnx.Rngs(0))


def test_embed_lookup_and_attend() -> None:
    embed = nnx.Embed(10, 4, rngs=nnx.Rngs(0))
    ids = jnp.array([[1, 2, 9], [0, 0, 3]])
    assert_close(embed(ids), embed.embedding[ids])
    h = jax.random.normal(jax.random.key(1), (2, 4))
    assert_close(embed.attend(h), h @ embed.embedding.T, atol=1e-5)
    with pytest.raises(TypeError, match="integer token ids"):
        embed(jnp.ones((2,)))


def test_embed_dtype_and_flax_parity() -> None:
    ours = nnx.Embed(10, 4, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert ours(jnp.array([1])).dtype == jnp.bfloat16
    ours = nnx.Embed(10, 4, rngs=nnx.Rngs(0))
    theirs = fnnx.Embed(10, 4, rngs=fnnx.Rngs(1))
    copy_from_flax(ours, theirs)
    ids = jnp.array([[1, 2, 9], [0, 0, 3]])
    assert_close(ours(ids), theirs(ids))
    h = jax.random.normal(jax.random.key(1), (2, 4))
    assert_close(ours.attend(h), theirs.attend(h))


def test_embed_attend_gradients() -> None:
    embed = nnx.Embed(6, 3, rngs=nnx.Rngs(0))
    def attend(m: nnx.Embed, h: jax.Array) -> jax.Array:
        return m.attend(h)

    check_layer_grads(embed, jax.random.normal(jax.random.key(1), (2, 3)), call=attend)
