"""Unpacking the result of split / state / partition with the wrong count is an error."""

import nnx
from typecheck.models import Block

block = Block(2, 3, rngs=nnx.Rngs(0))
g, a = nnx.split(block, nnx.Param, ...)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType]
g2, a2, b2, c2 = nnx.split(block, nnx.Param, ...)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType, reportUnknownVariableType]
only, = nnx.state(block, nnx.Param, nnx.BatchStat)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType]
x, y, z = nnx.state(block, nnx.Param, nnx.BatchStat)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType, reportUnknownVariableType]
p, q = nnx.pop(block, nnx.Param, nnx.BatchStat, "count")  # type: ignore[misc]  # pyright: ignore[reportAssignmentType]
(p1, p2), moduledef = block.partition(nnx.Param, nnx.BatchStat, ...)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType]
