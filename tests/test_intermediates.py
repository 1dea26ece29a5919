"""Intermediates: module.sow + nnx.pop, seed 003's self.y = nnx.Intermediate(y) + pop_state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import nnx
from typed_jax import jit


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(3, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.linear(x)
        self.sow(nnx.Intermediate, "features", h)
        return jax.nn.relu(h)


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.blocks = [Block(rngs), Block(rngs)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


X = jnp.ones((2, 3))


def test_sow_collects_per_call_and_pop_removes() -> None:
    model = Model(nnx.Rngs(0))
    model(X)
    model(X)
    captured = nnx.pop(model, nnx.Intermediate)
    assert set(captured.paths) == {("blocks", 0, "features"), ("blocks", 1, "features")}
    first: tuple[jax.Array, ...] = captured.blocks[0].features
    assert len(first) == 2  # one entry per call
    assert jnp.allclose(first[0], model.blocks[0].linear(X))
    assert nnx.state(model, nnx.Intermediate).paths == ()
    model(X)  # sowing again after a pop starts a new tuple
    assert len(nnx.state(model, nnx.Intermediate).blocks[0].features) == 1


def test_sow_with_a_reduction() -> None:
    class Summing(nnx.Module):
        def __call__(self, x: jax.Array) -> jax.Array:
            self.sow(nnx.Intermediate, "total", x.sum(), reduce_fn=lambda acc, v: acc + v, init_fn=lambda: 0.0)
            return x

    m = Summing()
    m(X)
    m(X)
    assert float(nnx.pop(m, nnx.Intermediate).total) == pytest.approx(12.0)


def test_sow_refuses_a_name_holding_other_state() -> None:
    block = Block(nnx.Rngs(0))
    with pytest.raises(ValueError, match="expected attribute 'linear' to be a Variable, got Linear"):
        block.sow(nnx.Intermediate, "linear", X)


def test_sown_values_come_out_of_jit_through_split_merge() -> None:
    model = Model(nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    @jit
    def forward(state: nnx.State[Model]) -> tuple[jax.Array, nnx.State[Model]]:
        m = nnx.merge(graphdef, state)
        y = m(X)
        return y, nnx.state(m, nnx.Intermediate)

    _, intermediates = forward(state)
    assert jnp.allclose(intermediates.blocks[1].features[0], model.blocks[1].linear(jax.nn.relu(model.blocks[0].linear(X))))


def test_seed_003_intermediate_attribute_and_pop_state() -> None:
    class Linear(nnx.Module):
        def __init__(self, din: int, dout: int, *, ctx: nnx.Context) -> None:
            key = ctx.make_rng("params")
            self.w = nnx.Param(jax.random.uniform(key, (din, dout)))
            self.b = nnx.Param(jnp.zeros((dout,)))

        def __call__(self, x: jax.Array) -> jax.Array:
            y = x @ self.w.value + self.b.value
            self.y = nnx.Intermediate(y)
            return y

    model = Linear(12, 2, ctx=nnx.context(0))
    y = model(jnp.ones((8, 12)))
    intermediates = model.pop_state(nnx.Intermediate)
    assert jnp.allclose(intermediates.y, y)
    assert not hasattr(model, "y")
