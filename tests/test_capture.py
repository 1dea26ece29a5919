"""``nnx.capture``: call a module and collect what it sowed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Block(nnx.Module):
    def __init__(self) -> None:
        self.linear = nnx.Linear(2, 2, rngs=nnx.Rngs(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.linear(x)
        self.sow(nnx.Intermediate, "y", y)
        return y


class Model(nnx.Module):
    def __init__(self) -> None:
        self.blocks = nnx.List([Block(), Block()])

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x

    def first(self, x: jax.Array) -> jax.Array:
        return self.blocks[0](x)


def test_capture_a_module_collects_nested_sows_and_pops_them() -> None:
    model = Model()
    y, feats = nnx.capture(model, nnx.Intermediate)(jnp.ones(2))
    assert set(feats.paths) == {("blocks", 0, "y"), ("blocks", 1, "y")}
    np.testing.assert_allclose(feats["blocks"][1]["y"][0], y)
    assert nnx.state(model, nnx.Intermediate).paths == ()  # popped: the next call starts clean
    _, again = nnx.capture(model, nnx.Intermediate)(jnp.ones(2))
    assert len(again["blocks"][0]["y"]) == 1


def test_capture_bound_methods_functions_and_several_kinds() -> None:
    model = Model()
    out, feats, caches = nnx.capture(model.first, nnx.Intermediate, nnx.Cache)(jnp.ones(2))
    assert feats.paths == (("blocks", 0, "y"),) and caches.paths == ()

    def run(m: Model, x: jax.Array) -> jax.Array:
        return m(x) * 2

    out, feats = nnx.capture(run, nnx.Intermediate)(model, jnp.ones(2))
    np.testing.assert_allclose(out, feats["blocks"][1]["y"][0] * 2)


def test_capture_under_jit() -> None:
    model = Model()

    @nnx.jit
    def forward(m: Model, x: jax.Array) -> tuple[jax.Array, nnx.State[Model]]:
        y, feats = nnx.capture(m, nnx.Intermediate)(x)
        return y, feats

    y, feats = forward(model, jnp.ones(2))
    np.testing.assert_allclose(feats["blocks"][1]["y"][0], y)
    assert nnx.state(model, nnx.Intermediate).paths == ()


def test_capture_needs_a_kind_and_a_module() -> None:
    with pytest.raises(TypeError, match="at least one Variable kind"):
        nnx.capture(Model())

    def not_a_module(x: jax.Array) -> jax.Array:
        return x

    with pytest.raises(TypeError, match="cannot tell which module"):
        nnx.capture(not_a_module, nnx.Intermediate)(jnp.ones(2))
