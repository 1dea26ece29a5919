"""nnx.Linear: shapes, bias, dtypes, sharding metadata, gradients, parity with Flax NNX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gradcheck import check_layer_grads
from parity import assert_close, copy_from_flax, fnnx

import nnx


def test_linear_shapes_and_state() -> None:
    layer = nnx.Linear(3, 5, rngs=nnx.Rngs(0))
    y = layer(jnp.ones((2, 7, 3)))
    assert y.shape == (2, 7, 5)
    assert {p for p in nnx.state(layer, nnx.Param).paths} == {("kernel",), ("bias",)}
    assert layer.kernel.shape == (3, 5) and isinstance(nnx.cell(layer, "kernel"), nnx.Param)


def test_linear_computes_affine_map() -> None:
    layer = nnx.Linear(4, 2, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(0), (6, 4))
    assert_close(layer(x), x @ layer.kernel + layer.bias)


def test_linear_without_bias_has_no_bias_cell() -> None:
    layer = nnx.Linear(3, 2, use_bias=False, rngs=nnx.Rngs(0))
    assert nnx.state(layer).paths == (("kernel",),)
    x = jnp.ones((1, 3))
    assert_close(layer(x), x @ layer.kernel)


def test_linear_same_seed_same_weights_other_seed_differs() -> None:
    a, b, c = (nnx.Linear(3, 3, rngs=nnx.Rngs(s)) for s in (0, 0, 1))
    assert_close(a.kernel, b.kernel)
    assert not np.allclose(a.kernel, c.kernel)


def test_linear_dtype_and_param_dtype() -> None:
    layer = nnx.Linear(3, 2, dtype=jnp.bfloat16, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    assert layer.kernel.dtype == jnp.float32
    assert layer(jnp.ones((1, 3))).dtype == jnp.bfloat16
    promoted = nnx.Linear(3, 2, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    assert promoted(jnp.ones((1, 3), jnp.float32)).dtype == jnp.float32


def test_with_partitioning_records_sharding_metadata() -> None:
    init = nnx.with_partitioning(nnx.initializers.lecun_normal(), ("embed", "mlp"))
    layer = nnx.Linear(4, 8, kernel_init=init, rngs=nnx.Rngs(0))
    params = nnx.state(layer, nnx.Param)
    assert params.metadata(("kernel",)) == {"sharding": ("embed", "mlp")}
    assert params.metadata(("bias",)) == {}
    # the metadata survives a split/merge round trip
    clone = nnx.merge(*nnx.split(layer))
    assert nnx.cell(clone, "kernel").metadata == {"sharding": ("embed", "mlp")}


def test_linear_gradients() -> None:
    layer = nnx.Linear(3, 2, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    check_layer_grads(layer, jax.random.normal(jax.random.key(1), (4, 3)))


@pytest.mark.parametrize("use_bias", [True, False])
def test_linear_matches_flax(use_bias: bool) -> None:
    theirs = fnnx.Linear(5, 3, use_bias=use_bias, rngs=fnnx.Rngs(3))
    ours = nnx.Linear(5, 3, use_bias=use_bias, rngs=nnx.Rngs(0))
    copy_from_flax(ours, theirs)
    x = jax.random.normal(jax.random.key(2), (4, 5))
    assert_close(ours(x), theirs(x))
