"""State paths that do not exist: the mypy plugin and the generated stubs (pyright) flag them."""

import jax

import nnx
from typecheck.models import Block, Linear, Model

model = Model(rngs=nnx.Rngs(0))
state = nnx.state(model)

state.blok  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state.block.linaer  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state.block.linear.W  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state.head.din  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # static: in the GraphDef
state.name  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # static
state["bloc"]  # type: ignore[nnx-state-path]
state["block"]["bn"]["mena"]  # type: ignore[nnx-state-path]
state.block.bn.momentum  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
x: str = state.block.linear.w  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
# mypy has no plugin hook for attribute writes through __setattr__: only the stubs check these
state.block.linear.w = 3.0  # pyright: ignore[reportAttributeAccessIssue]

graphdef, params, rest = nnx.split(model, nnx.Param, ...)
params.block.bn.mean  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
params.block.calls  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
rest.head  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
stats = nnx.state(model, nnx.BatchStat)
stats.head  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
stats.block.linear.w  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
stats["block"]["bn"]["scale"]  # type: ignore[nnx-filtered-out]
counts = nnx.state(model, "count")
counts.block.linear  # type: ignore[nnx-filtered-out]

block = Block(2, 3, rngs=nnx.Rngs(0))
nnx.update(model, nnx.state(block))  # type: ignore[nnx-state-mismatch]
nnx.update(block, nnx.state(model.block.linear))  # type: ignore[nnx-state-mismatch]
nnx.merge(graphdef, nnx.state(block))  # type: ignore[nnx-state-mismatch]
nnx.merge(nnx.graphdef(block), params, rest)  # type: ignore[nnx-state-mismatch]
wrong: Linear = nnx.merge(graphdef, params, rest)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
arr: jax.Array = nnx.merge(graphdef, params, rest)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
