"""The plugin reads ``graph=`` (Flax's tree-mode switch) as what it is, not as a filter
(run by tests/test_typecheck.py)."""

import nnx
from typecheck.models import Block

block = Block(2, 2, rngs=nnx.Rngs(0))
nnx.split(block, graph=False)
nnx.state(block, nnx.Param, graph=False)
params, rest = nnx.state(block, nnx.Param, ..., graph=True)
nnx.split(block, nnx.Param, nnx.BatchStat, graph=False)  # E: nnx.split leaves calls (Count) of Block unmatched by every filter; add a filter for them or end with ... to collect the rest  [nnx-split-unmatched]
