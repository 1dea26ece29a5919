"""nnx.BatchNorm: batch statistics in training, running averages in eval, parity with Flax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx
from typed_jax import jit


def batch(seed: int = 0, shape: tuple[int, ...] = (16, 4)) -> jax.Array:
    return 3.0 + 2.0 * jax.random.normal(jax.random.key(seed), shape)


def test_training_normalises_with_batch_stats_and_moves_running_averages() -> None:
    bn = nnx.BatchNorm(4, momentum=0.9, rngs=nnx.Rngs(0))
    x = batch()
    y = bn(x)
    assert_close(y.mean(0), jnp.zeros(4), atol=1e-5)
    assert_close(y.std(0), jnp.ones(4), atol=1e-3)
    assert_close(bn.mean, 0.1 * x.mean(0))
    assert_close(bn.var, 0.9 + 0.1 * x.var(0), rtol=1e-4)


def test_eval_uses_running_averages_and_changes_nothing() -> None:
    bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    bn.mean[...] = jnp.full((4,), 2.0)
    bn.var.value = jnp.full((4,), 4.0)
    bn.eval()
    assert bn.use_running_average
    x = batch()
    before = nnx.state(bn, nnx.BatchStat)
    assert_close(bn(x), (x - 2.0) / jnp.sqrt(4.0 + 1e-5))
    assert nnx.state(bn, nnx.BatchStat) == before
    bn.train()
    bn(x)
    assert nnx.state(bn, nnx.BatchStat) != before


def test_call_argument_overrides_the_attribute() -> None:
    bn = nnx.BatchNorm(4, use_running_average=True, rngs=nnx.Rngs(0))
    bn(batch(), use_running_average=False)
    assert not jnp.allclose(bn.mean[...], 0.0)
    assert bn.use_running_average  # the attribute itself is untouched


def test_feature_axis_and_shape_error() -> None:
    bn = nnx.BatchNorm(3, axis=1, rngs=nnx.Rngs(0))
    y = bn(batch(shape=(8, 3, 5)))
    assert y.shape == (8, 3, 5) and bn.mean.shape == (3,)
    with pytest.raises(ValueError, match=r"BatchNorm\(num_features=3\).*shape \(8, 4\)"):
        nnx.BatchNorm(3, rngs=nnx.Rngs(0))(batch(shape=(8, 4)))


def test_no_scale_no_bias() -> None:
    bn = nnx.BatchNorm(4, use_scale=False, use_bias=False, rngs=nnx.Rngs(0))
    assert nnx.state(bn, nnx.Param).paths == ()
    assert bn(batch()).shape == (16, 4)


def test_axis_name_averages_statistics_across_vmap() -> None:
    bn = nnx.BatchNorm(4, momentum=0.0, axis_name="devices", rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(bn)
    x = batch(shape=(2, 8, 4))  # two "devices" with 8 examples each

    def step(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        model = nnx.merge(graphdef, state)
        return model(x), model.mean[...]

    y, means = jax.vmap(step, axis_name="devices")(x)
    full = x.reshape(16, 4)
    assert_close(means[0], full.mean(0))
    assert_close(y.reshape(16, 4), (full - full.mean(0)) / jnp.sqrt(full.var(0) + 1e-5), atol=1e-4)


def test_train_step_through_split_merge_under_jit_updates_stats() -> None:
    bn = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(bn)

    @jit
    def forward(state: nnx.State[nnx.BatchNorm], x: jax.Array) -> tuple[jax.Array, nnx.State[nnx.BatchNorm]]:
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    _, new_state = forward(state, batch())
    nnx.update(bn, new_state)
    assert_close(bn.mean, 0.01 * batch().mean(0))


def test_batch_norm_gradients() -> None:
    bn = nnx.BatchNorm(4, scale_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(bn, batch(shape=(6, 4)))
    bn.eval()
    check_layer_grads(bn, batch(shape=(6, 4)))


@pytest.mark.parametrize("use_fast_variance", [True, False])
def test_batch_norm_matches_flax_including_running_stats(use_fast_variance: bool) -> None:
    kwargs = dict(momentum=0.8, epsilon=1e-3, use_fast_variance=use_fast_variance)
    theirs = fnnx.BatchNorm(4, scale_init=fnnx.initializers.normal(1.0), rngs=fnnx.Rngs(0), **kwargs)
    ours = nnx.BatchNorm(4, rngs=nnx.Rngs(0), momentum=0.8, epsilon=1e-3, use_fast_variance=use_fast_variance)
    copy_from_flax(ours, theirs)
    for seed in range(3):  # training steps move the running statistics identically
        assert_close(ours(batch(seed)), theirs(batch(seed)), atol=1e-4)
    assert_close(ours.mean, theirs.mean[...])
    assert_close(ours.var, theirs.var[...])
    ours.eval()
    theirs.eval()
    assert_close(ours(batch(9)), theirs(batch(9)), atol=1e-4)
