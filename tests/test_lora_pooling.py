"""nnx.LoRA / LoRALinear / LoRAParam and the pooling functions; Flax parity."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx
from nnx.nn.conv_common import PaddingLike
from typed_jax import value_and_grad

X = jax.random.normal(jax.random.key(0), (4, 6))


def test_lora_adds_a_low_rank_update_that_starts_at_zero() -> None:
    base = nnx.Linear(6, 3, rngs=nnx.Rngs(0))
    adapted = nnx.LoRA(6, 2, 3, base_module=base, rngs=nnx.Rngs(1))
    assert_close(adapted(X), base(X))  # lora_b = 0
    adapted.lora_b[...] = jnp.ones((2, 3))
    assert_close(adapted(X), base(X) + X @ adapted.lora_a @ adapted.lora_b, atol=1e-5)
    assert isinstance(nnx.cell(adapted, "lora_a"), nnx.LoRAParam)
    assert issubclass(nnx.LoRAParam, nnx.Param)


def test_lora_linear_from_linear_shares_the_base_cells() -> None:
    base = nnx.Linear(6, 3, rngs=nnx.Rngs(0))
    layer = nnx.LoRALinear.from_linear(base, lora_rank=2, rngs=nnx.Rngs(1))
    assert nnx.cell(layer, "kernel") is nnx.cell(base, "kernel")
    assert_close(layer(X), base(X))
    lora = nnx.state(layer, nnx.LoRAParam)
    assert set(lora.paths) == {("lora", "lora_a"), ("lora", "lora_b")}
    frozen = nnx.state(layer, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    assert set(frozen.paths) == {("kernel",), ("bias",)}


def test_training_only_lora_params_leaves_the_base_unchanged() -> None:
    model = nnx.LoRALinear(6, 3, lora_rank=2, rngs=nnx.Rngs(0))
    base = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.LoRAParam)
    graphdef, lora, rest = nnx.split(model, nnx.LoRAParam, ...)

    def loss(lora: nnx.State[nnx.LoRALinear]) -> jax.Array:
        return jnp.mean((nnx.merge(graphdef, lora, rest)(X) - 1.0) ** 2)

    before = float(loss(lora))
    optimizer.update(model, value_and_grad(loss)(lora)[1])
    assert float(loss(nnx.state(model, nnx.LoRAParam))) < before
    assert nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))) == base


def test_lora_gradients_and_flax_parity() -> None:
    ours = nnx.LoRALinear(6, 3, lora_rank=2, b_initializer=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(ours, X[:2])
    theirs = fnnx.LoRALinear(6, 3, lora_rank=2, b_initializer=fnnx.initializers.normal(1.0), rngs=fnnx.Rngs(1))
    copy_from_flax(ours, theirs)
    assert_close(ours(X), theirs(X), atol=1e-5)


IMG = jax.random.normal(jax.random.key(1), (2, 5, 6, 3))


def test_pooling_shapes_and_values() -> None:
    y = nnx.max_pool(IMG, (2, 2), strides=(2, 2))
    assert y.shape == (2, 2, 3, 3)
    assert_close(y[0, 0, 0], IMG[0, :2, :2].max((0, 1)))
    assert_close(nnx.min_pool(IMG, (2, 2))[0, 0, 0], IMG[0, :2, :2].min((0, 1)))
    assert_close(nnx.avg_pool(IMG, (2, 3))[1, 2, 1], IMG[1, 2:4, 1:4].mean((0, 1)), atol=1e-6)
    assert nnx.avg_pool(IMG[0], (2, 2)).shape == (4, 5, 3)  # unbatched


def test_avg_pool_count_include_pad() -> None:
    ones = jnp.ones((1, 4, 4, 1))
    assert_close(nnx.avg_pool(ones, (3, 3), padding="SAME", count_include_pad=False), ones)
    corner = nnx.avg_pool(ones, (3, 3), padding="SAME")[0, 0, 0, 0]
    assert_close(corner, 4 / 9)


@pytest.mark.parametrize("padding", ["VALID", "SAME", ((1, 0), (0, 1))])
def test_pooling_matches_flax(padding: PaddingLike) -> None:
    for ours, theirs in [(nnx.max_pool, fnnx.max_pool), (nnx.avg_pool, fnnx.avg_pool), (nnx.min_pool, fnnx.min_pool)]:
        assert_close(ours(IMG, (2, 3), (1, 2), padding), theirs(IMG, (2, 3), (1, 2), padding), atol=1e-6)


def test_pooling_errors() -> None:
    with pytest.raises(ValueError, match=r"strides=\(1,\) has 1 entries for 2 spatial axes"):
        nnx.max_pool(IMG, (2, 2), strides=(1,))
    with pytest.raises(ValueError, match="for convolutions"):
        nnx.max_pool(IMG, (2, 2), padding="CIRCULAR")
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        nnx.max_pool(jnp.ones(5), (2, 2))
