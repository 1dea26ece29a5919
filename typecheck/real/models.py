"""Real models for the typing corpus (issue 10): the library's layers, the shapes of every
model in ``examples/``, and the patterns that made a checker cry wolf or go quiet.

Stubs: ``python -m nnx.stubgen typecheck/models.py typecheck/real -o stubs``.
"""

from __future__ import annotations

import dataclasses
from typing import Generic, Protocol, TypeVar

import jax
import jax.numpy as jnp

import nnx
from typecheck.real.base import Backbone

class MLP(nnx.Module):
    """Linear -> BatchNorm -> Dropout -> Linear: library layers only."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.l1 = nnx.Linear(4, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.1, rngs=rngs)
        self.l2 = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.l2(self.drop(nnx.relu(self.bn(self.l1(x)))))


class CNN(nnx.Module):
    """The digits example's shape: Conv, BatchNorm, LayerNorm, Embed, Dropout, Linear."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.ln = nnx.LayerNorm(4, rngs=rngs)
        self.embed = nnx.Embed(10, 4, rngs=rngs)
        self.dropout = nnx.Dropout(0.3, rngs=rngs)
        self.head = nnx.Linear(4, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.dropout(self.ln(nnx.relu(self.bn(self.conv(x)))))
        return self.head(h.mean(axis=(1, 2)))


class Encoder(nnx.Module):
    """The VAE example's encoder: a private Rngs stream and an Intermediate set in ``__call__``."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(4, 8, rngs=rngs)
        self.mean = nnx.Linear(8, 2, rngs=rngs)
        self.noise = nnx.Rngs(noise=rngs.params())

    def __call__(self, x: jax.Array) -> jax.Array:
        mean = self.mean(nnx.relu(self.hidden(x)))
        self.kl_loss = nnx.Intermediate(jnp.mean(mean**2))
        return mean + jax.random.normal(self.noise.noise(), mean.shape)


class VAE(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.encoder = Encoder(rngs=rngs)
        self.decoder = nnx.Linear(2, 4, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decoder(self.encoder(x))


class Block(nnx.Module):
    """The transformer example's block: attention (with a decode cache), LayerNorm, MLP."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs) -> None:
        self.ln = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(2, dim, rngs=rngs)
        self.mlp = nnx.Linear(dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.mlp(self.attn(self.ln(x)))


class TransformerLM(nnx.Module):
    """Embeddings, an ``nnx.List`` of blocks, a dict of heads and a tuple of norms."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Embed(16, 4, rngs=rngs)
        self.blocks = nnx.List([Block(4, rngs=rngs) for _ in range(2)])
        self.heads = nnx.Dict({"lm": nnx.Linear(4, 16, rngs=rngs)})
        self.norms = (nnx.LayerNorm(4, rngs=rngs), nnx.LayerNorm(4, rngs=rngs))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.heads["lm"](self.norms[1](self.norms[0](x)))


def _linear(rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(4, 4, rngs=rngs)


class ScanMLP(nnx.Module):
    """The scan example's shape: layers stacked by ``nnx.vmap``, shared BatchNorm."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.layers = nnx.vmap(_linear, axis_size=2)(rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)


class LoRAMLP(nnx.Module):
    """The LoRA example's shape: a LoRALinear next to a plain Linear."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.adapted = nnx.LoRALinear(4, 4, lora_rank=2, rngs=rngs)
        self.out = nnx.Linear(4, 2, rngs=rngs)


def dense(din: int, dout: int, axes: tuple[str, str], *, rngs: nnx.Rngs) -> nnx.Linear:
    """The sharded example's helper: a Linear whose parameters name their axes."""
    kernel_init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), axes)
    return nnx.Linear(din, dout, kernel_init=kernel_init, rngs=rngs)


class Sharded(nnx.Module):
    """Submodules made by a helper function."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.hidden = dense(4, 8, ("embed", "mlp"), rngs=rngs)


class Tower(Backbone):
    """For the completion test: library layers, an ``nnx.List`` of blocks, inherited fields."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        super().__init__(4, 4, rngs=rngs)
        self.linear = nnx.Linear(4, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, rngs=rngs)
        self.blocks = nnx.List([Block(4, rngs=rngs) for _ in range(2)])


class Classifier(Backbone):
    """Inherits ``embed`` and ``norm`` from a base class in another file."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        super().__init__(4, 8, rngs=rngs)
        self.head = nnx.Linear(8, 2, rngs=rngs)


M = TypeVar("M", bound=nnx.Module)


class Wrapper(nnx.Module, Generic[M]):
    """A generic module: its submodule is typed by a TypeVar."""

    def __init__(self, inner: M, *, rngs: nnx.Rngs) -> None:
        self.inner = inner
        self.scale = nnx.Param(jnp.ones(()))


class Features(Protocol):
    def __call__(self, x: jax.Array) -> jax.Array: ...


class Probe(nnx.Module):
    """Backbones typed by a Protocol and by ``nnx.Module``; a submodule from a local variable."""

    def __init__(self, features: Features, trunk: nnx.Module, *, rngs: nnx.Rngs) -> None:
        self.features = features
        self.trunk = trunk
        shared = nnx.Linear(2, 2, rngs=rngs)
        self.left = shared
        self.right = shared


class Stack(nnx.Module):
    """``nnx.Sequential``, an Optional submodule, and a submodule named like State methods."""

    def __init__(self, project: bool, *, rngs: nnx.Rngs) -> None:
        self.seq = nnx.Sequential(nnx.Linear(2, 4, rngs=rngs), nnx.relu, nnx.Linear(4, 2, rngs=rngs))
        self.proj: nnx.Linear | None = nnx.Linear(2, 2, rngs=rngs) if project else None
        self.merge = nnx.Linear(2, 2, rngs=rngs)
        self.keys = nnx.Linear(2, 2, rngs=rngs)


class Sower(nnx.Module):
    """Sows an intermediate in ``__call__``."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.linear(x)
        self.sow(nnx.Intermediate, "activations", y)
        return y


@dataclasses.dataclass
class LayerConfig:
    """A plain dataclass with defaults (its stub must keep them)."""

    width: int = 4
    depth: int = 2


@nnx.dataclass
class Affine(nnx.Module):
    """A declarative module with a generated constructor."""

    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()
