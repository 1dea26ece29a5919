"""nnx.Conv and nnx.ConvTranspose: padding modes, strides, dilation, groups; parity with Flax NNX."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx

X2 = jax.random.normal(jax.random.key(0), (2, 9, 8, 4))
X1 = jax.random.normal(jax.random.key(1), (3, 11, 4))

CONV_CASES: list[dict[str, Any]] = [
    dict(kernel_size=(3, 3)),
    dict(kernel_size=(3, 2), strides=(2, 1), padding="VALID"),
    dict(kernel_size=(3, 3), padding="CIRCULAR", kernel_dilation=2),
    dict(kernel_size=(2, 2), padding=((1, 0), (2, 1)), input_dilation=2),
    dict(kernel_size=(3, 3), padding=1, feature_group_count=2),
    dict(kernel_size=(1, 1), use_bias=False),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_conv_matches_flax(case: dict[str, Any]) -> None:
    ours = nnx.Conv(4, 6, rngs=nnx.Rngs(0), **case)
    theirs = fnnx.Conv(4, 6, rngs=fnnx.Rngs(1), **case)
    copy_from_flax(ours, theirs)
    assert_close(ours(X2), theirs(X2), atol=1e-4)


def test_conv_1d_causal_sees_only_the_past() -> None:
    conv = nnx.Conv(4, 2, 3, padding="CAUSAL", kernel_dilation=2, rngs=nnx.Rngs(0))
    y = conv(X1)
    assert y.shape == (3, 11, 2)
    changed = X1.at[:, 7:].set(0.0)  # the future of step 6
    assert_close(conv(changed)[:, :7], y[:, :7])
    theirs = fnnx.Conv(4, 2, 3, padding="CAUSAL", kernel_dilation=2, rngs=fnnx.Rngs(1))
    copy_from_flax(conv, theirs)
    assert_close(conv(X1), theirs(X1), atol=1e-5)


def test_conv_shapes_batches_and_mask() -> None:
    conv = nnx.Conv(4, 6, (3, 3), strides=2, rngs=nnx.Rngs(0))
    assert conv(X2).shape == (2, 5, 4, 6)
    assert conv(X2[0]).shape == (5, 4, 6)  # unbatched
    assert conv(X2.reshape(1, 2, 9, 8, 4)).shape == (1, 2, 5, 4, 6)  # two batch axes
    mask = jnp.zeros((3, 3, 4, 6)).at[1, 1].set(1.0)
    masked = nnx.Conv(4, 6, (3, 3), mask=mask, use_bias=False, rngs=nnx.Rngs(0))
    assert_close(masked(X2), X2 @ masked.kernel[1, 1], atol=1e-5)  # only the centre tap is left


def test_conv_errors() -> None:
    with pytest.raises(ValueError, match="divisible by feature_group_count=3"):
        nnx.Conv(4, 6, 3, feature_group_count=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="'CAUSAL' is for 1-D"):
        nnx.Conv(4, 6, (3, 3), padding="CAUSAL", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="padding='FULL' is not a mode"):
        nnx.Conv(4, 6, 3, padding="FULL", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"strides=\(1, 2, 3\) has 3 entries for 2 spatial axes"):
        nnx.Conv(4, 6, (3, 3), strides=(1, 2, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4, 6\)"):
        nnx.Conv(4, 6, (3, 3), mask=jnp.ones((3, 4, 6)), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"expected an input .* got shape \(8, 4\)"):
        nnx.Conv(4, 6, (3, 3), rngs=nnx.Rngs(0))(X2[0, 0])


def test_conv_gradients() -> None:
    conv = nnx.Conv(2, 3, (2, 2), strides=(2, 1), bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(conv, jax.random.normal(jax.random.key(2), (1, 4, 3, 2)))


TRANSPOSE_CASES: list[dict[str, Any]] = [
    dict(kernel_size=(3, 3)),
    dict(kernel_size=(3, 2), strides=(2, 2), padding="VALID"),
    dict(kernel_size=(4, 4), strides=2, padding="CIRCULAR"),
    dict(kernel_size=(3, 3), strides=2, padding="CIRCULAR", transpose_kernel=True),
    dict(kernel_size=(5, 3), strides=(3, 2), padding="CIRCULAR", kernel_dilation=(1, 2)),
    dict(kernel_size=(3, 3), strides=2, padding=((2, 1), (1, 1)), kernel_dilation=2),
    dict(kernel_size=(2, 2), strides=2, transpose_kernel=True, use_bias=False),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_conv_transpose_matches_flax(case: dict[str, Any]) -> None:
    ours = nnx.ConvTranspose(4, 5, rngs=nnx.Rngs(0), **case)
    theirs = fnnx.ConvTranspose(4, 5, rngs=fnnx.Rngs(1), **case)
    copy_from_flax(ours, theirs)
    assert_close(ours(X2), theirs(X2), atol=1e-4)


def test_conv_transpose_is_the_gradient_of_conv() -> None:
    conv = nnx.Conv(4, 5, (3, 3), strides=2, padding="VALID", use_bias=False, rngs=nnx.Rngs(0))
    up = nnx.ConvTranspose(5, 4, (3, 3), strides=2, padding="VALID", transpose_kernel=True, use_bias=False, rngs=nnx.Rngs(0))
    up.kernel = conv.kernel
    x = X2[:, :, :7]  # sizes where a stride-2 VALID convolution loses nothing: (9, 7) -> (4, 3)
    y, vjp = jax.vjp(conv, x)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax.vjp: bare Callable
    cotangent = jax.random.normal(jax.random.key(3), y.shape)
    (expected,) = vjp(cotangent)  # pyright: ignore[reportUnknownVariableType]  # see jax.vjp above
    assert_close(up(cotangent), expected, atol=1e-4)


def test_conv_transpose_shapes_and_gradients() -> None:
    up = nnx.ConvTranspose(4, 3, (3, 3), strides=2, rngs=nnx.Rngs(0))
    assert up(X2).shape == (2, 18, 16, 3)
    assert up(X2[0]).shape == (18, 16, 3)
    small = nnx.ConvTranspose(2, 2, (2, 2), strides=2, padding="CIRCULAR", bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(small, jax.random.normal(jax.random.key(2), (1, 3, 2, 2)))
    with pytest.raises(ValueError, match="'CAUSAL' is not defined"):
        nnx.ConvTranspose(4, 3, 3, padding="CAUSAL", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("strides,kernel,dilation", [(1, 3, 1), (2, 3, 1), (2, 4, 1), (3, 2, 2), (2, 5, 2)])
def test_conv_transpose_equals_lax_conv_transpose(padding: str, strides: int, kernel: int, dilation: int) -> None:
    up = nnx.ConvTranspose(4, 3, (kernel, kernel - 1 or 1), strides=(strides, 1), padding=padding, kernel_dilation=dilation, use_bias=False, rngs=nnx.Rngs(0))
    expected = jax.lax.conv_transpose(
        X2, up.kernel[...], (strides, 1), padding, rhs_dilation=(dilation, dilation), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    assert_close(up(X2), expected, atol=1e-4)


def test_conv_transpose_feature_groups_transpose_each_group_separately() -> None:
    grouped = nnx.ConvTranspose(4, 6, (3, 3), strides=2, feature_group_count=2, rngs=nnx.Rngs(0))
    assert grouped.kernel.shape == (3, 3, 2, 6)
    y = grouped(X2)
    assert grouped.bias is not None
    for g in range(2):
        part = nnx.ConvTranspose(2, 3, (3, 3), strides=2, use_bias=False, rngs=nnx.Rngs(0))
        part.kernel[...] = grouped.kernel[..., 3 * g : 3 * (g + 1)]
        assert_close(y[..., 3 * g : 3 * (g + 1)], part(X2[..., 2 * g : 2 * (g + 1)]) + grouped.bias[3 * g : 3 * (g + 1)], atol=1e-4)
    with pytest.raises(ValueError, match="divisible by feature_group_count=3"):
        nnx.ConvTranspose(4, 6, 3, feature_group_count=3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="transpose_kernel=True supports only feature_group_count=1"):
        nnx.ConvTranspose(4, 6, 3, feature_group_count=2, transpose_kernel=True, rngs=nnx.Rngs(0))
