"""Corpus models with a Variable kind of their own (its collection from a module constant).

Kept apart from ``models.py``: the mypy plugin's known collections are those of the modules
a run loads, and ``typecheck/plugin`` expects exact lists that do not include this one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

import nnx

COUNTS = "step_counts"  # a module-level constant used as a collection name


class Count(nnx.Variable[jax.Array], collection=COUNTS):
    """A kind whose collection comes from a constant."""


class Partial(nnx.Module):
    """One attribute of unknown type: only that part goes unchecked."""

    def __init__(self, extra: Any, *, rngs: nnx.Rngs) -> None:
        self.extra = extra
        self.linear = nnx.Linear(2, 2, rngs=rngs)
        self.calls = Count(jnp.array(0))


class Seed000(nnx.Module):
    """Seed 000's fields declared by collection name, and a kind with a constant collection."""

    w: jax.Array = nnx.ref("params")
    steps: jax.Array = nnx.variable(Count)

    def __init__(self) -> None:
        self.w = jnp.ones((2,))
        self.steps = jnp.zeros(())
