"""Filters: non-filters are errors under both checkers; unknown collections, filters that
match nothing and split coverage need the mypy plugin (pyright has no plugins)."""

import jax.numpy as jnp

import nnx
from typecheck.models import Block, Linear

block = Block(2, 3, rngs=nnx.Rngs(0))
linear = Linear(2, 3, rngs=nnx.Rngs(0))

nnx.state(block, 3)  # type: ignore[nnx-filter]  # pyright: ignore[reportArgumentType, reportCallIssue]
nnx.state(block, nnx.Param(jnp.ones(2)))  # type: ignore[nnx-filter]  # pyright: ignore[reportArgumentType, reportCallIssue]
nnx.split(block, 1.5, ...)  # type: ignore[nnx-filter]  # pyright: ignore[reportArgumentType, reportCallIssue]
nnx.pop(block, None)  # type: ignore[nnx-unmatched-filter]  # None is Flax's filter for nothing: this pops nothing
nnx.Not(3)  # type: ignore[nnx-filter]  # pyright: ignore[reportArgumentType]
nnx.All(nnx.Param, [nnx.BatchStat])  # type: ignore[nnx-filter]  # pyright: ignore[reportArgumentType]
bad: nnx.Filter = 3  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

nnx.state(block, "parmas")  # type: ignore[nnx-collection]  # pyright: ignore[reportDeprecated]
nnx.split(block, "batch_stat", ...)  # type: ignore[nnx-collection]
nnx.state(block, nnx.Not("parmas"))  # type: ignore[nnx-collection]
nnx.state(block, (nnx.Param, "counts"))  # type: ignore[nnx-collection]
nnx.ref("parmas")  # type: ignore[nnx-collection]

nnx.state(linear, nnx.BatchStat)  # type: ignore[nnx-unmatched-filter]  # pyright: ignore[reportDeprecated]
nnx.pop(linear, nnx.Cache)  # type: ignore[nnx-unmatched-filter]  # pyright: ignore[reportDeprecated]
nnx.state(block, nnx.Param, nnx.PathContains("linear"))  # type: ignore[nnx-unmatched-filter]  # Param took them first

nnx.split(block, nnx.Param)  # type: ignore[nnx-split-unmatched]
nnx.split(block, nnx.Param, nnx.BatchStat)  # type: ignore[nnx-split-unmatched]
