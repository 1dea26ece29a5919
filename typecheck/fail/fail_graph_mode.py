"""``graph=`` and ``graph_updates=`` take a bool: anything else is an error for both checkers
(the mypy plugin checks the filters of ``nnx.split``/``nnx.state``, but ``graph=`` is no filter)."""

import nnx
from typecheck.models import Block

block = Block(2, 3, rngs=nnx.Rngs(0))
nnx.split(block, nnx.Param, ..., graph="no")  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
nnx.state(block, graph=0.0)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
nnx.clone(block, graph="no")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
nnx.jit(lambda m: m, graph_updates="no")  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType, reportUnknownLambdaType]
nnx.set_graph_mode("no")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
