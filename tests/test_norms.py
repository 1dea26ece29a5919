"""nnx.LayerNorm, nnx.RMSNorm and nnx.GroupNorm: statistics, options, gradients, Flax parity."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx

X = 1.5 + 2.0 * jax.random.normal(jax.random.key(0), (3, 5, 8))
SCALE_INIT = nnx.initializers.normal(1.0)  # a non-trivial scale


def test_layer_norm_normalises_each_example() -> None:
    y = nnx.LayerNorm(8, epsilon=0.0)(X)
    assert_close(y.mean(-1), jnp.zeros((3, 5)), atol=1e-5)
    assert_close(y.var(-1), jnp.ones((3, 5)), atol=1e-4)


def test_rms_norm_divides_by_root_mean_square() -> None:
    y = nnx.RMSNorm(8, epsilon=0.0)(X)
    assert_close(y, X / jnp.sqrt(jnp.mean(X**2, -1, keepdims=True)), atol=1e-5)
    assert nnx.state(nnx.RMSNorm(8)).paths == (("scale",),)


def test_group_norm_groups_channels() -> None:
    y = nnx.GroupNorm(8, num_groups=2, epsilon=0.0)(X)
    groups = y.reshape(3, 5, 2, 4)
    assert_close(groups.mean((1, 3)), jnp.zeros((3, 2)), atol=1e-5)
    assert_close(groups.var((1, 3)), jnp.ones((3, 2)), atol=1e-4)
    assert_close(nnx.GroupNorm(8, num_groups=None, group_size=4, epsilon=0.0)(X), y)


def test_group_norm_argument_errors() -> None:
    with pytest.raises(ValueError, match="give exactly one of them"):
        nnx.GroupNorm(8, num_groups=2, group_size=4)
    with pytest.raises(ValueError, match="8 features cannot be split into 3 equal groups"):
        nnx.GroupNorm(8, num_groups=3)
    with pytest.raises(ValueError, match=r"GroupNorm\(num_features=6\).*last axis must have 6"):
        nnx.GroupNorm(6, num_groups=2)(X)


def test_masked_statistics_ignore_masked_entries() -> None:
    mask = jnp.arange(8) < 5
    mask = jnp.broadcast_to(mask, X.shape)
    y = nnx.LayerNorm(8, epsilon=0.0)(X, mask=mask)
    assert_close(y[..., :5].mean(-1), jnp.zeros((3, 5)), atol=1e-5)


def test_dtype_keeps_float32_statistics() -> None:
    y = nnx.LayerNorm(8, dtype=jnp.bfloat16)(X.astype(jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert_close(y.astype(jnp.float32).mean(-1), jnp.zeros((3, 5)), atol=0.05)


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (lambda: nnx.LayerNorm(8, bias_init=nnx.initializers.normal(1.0), scale_init=SCALE_INIT), lambda: fnnx.LayerNorm(8, rngs=fnnx.Rngs(1))),
        (lambda: nnx.LayerNorm(8, use_fast_variance=False, use_bias=False), lambda: fnnx.LayerNorm(8, use_fast_variance=False, use_bias=False, rngs=fnnx.Rngs(1))),
        (lambda: nnx.LayerNorm(5, reduction_axes=(-2, -1), feature_axes=-2), lambda: fnnx.LayerNorm(5, reduction_axes=(-2, -1), feature_axes=-2, rngs=fnnx.Rngs(1))),
        (lambda: nnx.RMSNorm(8, scale_init=SCALE_INIT), lambda: fnnx.RMSNorm(8, rngs=fnnx.Rngs(1))),
        (lambda: nnx.GroupNorm(8, num_groups=4, scale_init=SCALE_INIT), lambda: fnnx.GroupNorm(8, num_groups=4, rngs=fnnx.Rngs(1))),
        (lambda: nnx.GroupNorm(8, num_groups=None, group_size=1), lambda: fnnx.GroupNorm(8, num_groups=None, group_size=1, rngs=fnnx.Rngs(1))),
    ],
    ids=["layer_norm", "layer_norm_exact_var", "layer_norm_two_axes", "rms_norm", "group_norm", "instance_norm"],
)
def test_norms_match_flax(ours: Any, theirs: Any) -> None:
    a, b = ours(), theirs()
    b_state = fnnx.state(b, fnnx.Param)
    b_leaves = jax.tree.leaves(b_state)
    noise = [jax.random.normal(jax.random.key(i), v.shape) for i, v in enumerate(b_leaves)]
    b_state = jax.tree.unflatten(jax.tree.structure(b_state), noise)  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]  # flax's State is untyped
    fnnx.update(b, b_state)  # non-trivial scale and bias on the Flax side, copied to ours
    copy_from_flax(a, b)
    assert_close(a(X), b(X), atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: nnx.LayerNorm(4, bias_init=nnx.initializers.normal(1.0), scale_init=SCALE_INIT),
        lambda: nnx.RMSNorm(4, scale_init=SCALE_INIT),
        lambda: nnx.GroupNorm(4, num_groups=2, scale_init=SCALE_INIT),
    ],
    ids=["layer_norm", "rms_norm", "group_norm"],
)
def test_norm_gradients(layer: Any) -> None:
    check_layer_grads(layer(), X[:2, :3, :4])
