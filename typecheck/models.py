"""Models shared by the typing cases; ``python -m nnx.stubgen typecheck/models.py -o stubs``
writes ``stubs/typecheck/models.pyi`` from this file."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import nnx


class Count(nnx.Variable[jax.Array]):
    """A kind of state of our own: collection "count"."""


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()
    din: int = nnx.static()

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.din = din
        self.w = jax.random.uniform(rngs.params(), (din, dout))
        self.b = jnp.zeros((dout,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


class BatchNorm(nnx.Module):
    scale: jax.Array = nnx.param()
    mean: jax.Array = nnx.batch_stat()
    var: jax.Array = nnx.batch_stat()

    def __init__(self, n: int) -> None:
        self.scale = jnp.ones((n,))
        self.mean = jnp.zeros((n,))
        self.var = jnp.ones((n,))
        self.momentum = 0.9

    def __call__(self, x: jax.Array) -> jax.Array:
        return (x - self.mean) / jnp.sqrt(self.var + 1e-5) * self.scale


class Block(nnx.Module):
    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.linear = Linear(din, dout, rngs=rngs)
        self.bn = BatchNorm(dout)
        self.calls = Count(jnp.array(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        self.calls += 1
        return jax.nn.relu(self.bn(self.linear(x)))


class Model(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.block = Block(2, 4, rngs=rngs)
        self.head = Linear(4, 1, rngs=rngs)
        self.name = "model"

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.block(x))


class Probe(nnx.Module):
    """Sows intermediates (a state field the plugin learns from ``self.sow``) and has a cache."""

    cache: jax.Array = nnx.variable(nnx.Cache)

    def __init__(self) -> None:
        self.cache = jnp.zeros(())
        self.scale = nnx.Param(jnp.ones(()))

    def __call__(self, x: jax.Array) -> jax.Array:
        self.sow(nnx.Intermediate, "features", x)
        return x * self.scale.value
