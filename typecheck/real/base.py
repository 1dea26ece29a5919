"""A base model in its own file: ``models.Classifier`` derives from it (inheritance across files)."""

from __future__ import annotations

import jax

import nnx


class Backbone(nnx.Module):
    """Two library layers; a subclass in another file adds its own fields."""

    def __init__(self, din: int, dim: int, *, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Linear(din, dim, rngs=rngs)
        self.norm = nnx.LayerNorm(dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.norm(self.embed(x))
