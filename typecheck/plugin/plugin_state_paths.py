"""The plugin's exact messages for State paths (run by tests/test_typecheck.py)."""

import nnx
from typecheck.models import Block, Linear, Model

model = Model(rngs=nnx.Rngs(0))
state = nnx.state(model)
state.blok  # E: Model has no state path "blok"; its state fields are: block, head  [nnx-state-path]
state.block.linaer  # E: Block has no state path "linaer"; its state fields are: bn, calls, linear  [nnx-state-path]
state["block"]["bn"]["mena"]  # E: BatchNorm has no state path "mena"; its state fields are: mean, scale, var  [nnx-state-path]
state.name  # E: "name" is a static field of Model (it lives in the GraphDef); its state fields are: block, head  [nnx-state-path]
state.head.din  # E: "din" is a static field of Linear (it lives in the GraphDef); its state fields are: b, w  [nnx-state-path]
params = nnx.state(model, nnx.Param)
params.block.bn.mean  # E: "mean" (BatchStat) of BatchNorm was removed by the filter; this State holds only Param: scale  [nnx-filtered-out]
params["block"]["calls"]  # E: "calls" (Count) of Block was removed by the filter; this State holds only Param: bn, linear  [nnx-filtered-out]
stats = nnx.state(model, nnx.BatchStat)
stats.head  # E: "head" (Linear) of Model was removed by the filter; this State holds only BatchStat: block  [nnx-filtered-out]
nnx.update(model, nnx.state(model.block))  # E: nnx.update: this State comes from Block, not Model; pass a State taken from a Model (nnx.state / nnx.split of it)  [nnx-state-mismatch]
nnx.merge(nnx.graphdef(model), nnx.state(Linear(1, 1, rngs=nnx.Rngs(0))))  # E: nnx.merge: this State comes from Linear, not Model; pass a State taken from a Model (nnx.state / nnx.split of it)  [nnx-state-mismatch]
block = Block(2, 2, rngs=nnx.Rngs(0))
reveal_type(nnx.split(block, nnx.Param, ...))  # N: Revealed type is "tuple[nnx.graphdef.GraphDef[typecheck.models.Block], nnx.state.State[typecheck.models.Block, nnx.variables.Param[Any]], nnx.state.State[typecheck.models.Block, nnx.variables.BatchStat[Any] | typecheck.models.Count]]"
reveal_type(Linear.w)  # N: Revealed type is "nnx.variables.Param[jax._src.basearray.Array]"
