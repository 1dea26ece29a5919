"""Declared fields and attributes: typos and wrong types are errors under both checkers.

Each expected error is marked on its line; a missing error fails the run too
(mypy's warn_unused_ignores, pyright's reportUnnecessaryTypeIgnoreComment).
"""

import jax
import jax.numpy as jnp

import nnx
from typecheck.models import BatchNorm, Block, Linear

linear = Linear(2, 3, rngs=nnx.Rngs(0))
linear.w = "not an array"  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
linear.w = nnx.BatchStat(jnp.zeros((2, 3)))  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
linear.din = jnp.ones(2)  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
linear.wx  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
linear.wx = jnp.ones(2)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
linear(3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

bn = BatchNorm(3)
bn.momentum = "fast"  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
bn.mean.value  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # a declared field is the array, not the cell

block = Block(2, 3, rngs=nnx.Rngs(0))
block.linaer  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
block.calls.valeu  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
block.linear = BatchNorm(3)  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]

p = nnx.Param(jnp.ones(2))
p.shardng  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # metadata reads are run-time only
w: str = p.value  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]


class Lazy(nnx.Module):
    w: jax.Array = nnx.param()


Lazy().w = 3  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]


@nnx.dataclass
class Affine(nnx.Module):
    w: jax.Array = nnx.param()
    name: str = nnx.static()


Affine(jnp.ones(2))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
Affine(jnp.ones(2), 3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
Affine(jnp.ones(2), "n", extra=1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


class Sized(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self, n: int) -> None:
        self.w = jnp.ones(n)


Sized()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]  # the constructor is __init__'s, metaclass or not
Sized("3")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

nnx.Linear(2, 3, ctx=nnx.Rngs(0))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # ctx= takes a Context
nnx.Linear(2, 3, rng=nnx.Rngs(0))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]  # a misspelt keyword is caught
nnx.Dropout(0.5)(jnp.ones(2), ctx=0)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
