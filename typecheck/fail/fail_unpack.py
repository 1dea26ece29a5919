"""``nnx.merge`` of GraphStates takes nothing else: a State after a GraphState, or a GraphDef
alone, is an error for both checkers (and a run-time error naming the fix)."""

import nnx
from typecheck.models import Block

block = Block(2, 3, rngs=nnx.Rngs(0))
params, rest = nnx.unpack(block, nnx.Param, ...)
nnx.merge(params, nnx.state(block))  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
nnx.merge(nnx.graphdef(block))  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
nnx.call(block)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
