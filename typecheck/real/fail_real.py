"""Wrong code on the real models: each marked line must be reported by the checker named in
its marker (``# type: ignore[...]``: mypy with the plugin; ``# pyright: ignore[...]``: pyright
with the generated stubs). pyright has no plugin: it sees filters through the parts each
generated State class declares (``nnx.state.Parts``), and reports a filter, collection or
``wrt=`` that keeps nothing as a deprecated overload (an error under strict pyright). One
line carries only mypy's marker, saying why. With the marked lines removed the file runs."""

import jax.numpy as jnp
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

import nnx
from typecheck.real.kinds import Partial, Seed000
from typecheck.real.models import MLP, Classifier, LoRAMLP, Stack, TransformerLM, Wrapper

rngs = nnx.Rngs(0)
mlp = MLP(rngs=rngs)
state = nnx.state(mlp)

# a typo'd path, through library layers
state.bn.maen  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state.l1.kernl  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state["bn"]["varr"]  # type: ignore[nnx-state-path]  # pyright reports no deprecated overload met through [], so it accepts any key
# static attributes of library layers are not state
state.l1.dtype  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
state.bn.momentum  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
# a write to a path that does not exist
state.l1.kernal = jnp.zeros((4, 8))  # pyright: ignore[reportArgumentType]

# a library layer on its own: its shipped State class checks it under both
nnx.state(nnx.BatchNorm(2, rngs=rngs)).maen  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# filtered out
graphdef, params, rest = nnx.split(mlp, nnx.Param, ...)
params.bn.mean  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
rest.l1.kernel  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(mlp, nnx.BatchStat).l2  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# wrong arity
g, only = nnx.split(mlp, nnx.Param, ...)  # type: ignore[misc]  # pyright: ignore[reportAssignmentType]

# an unknown collection, and wrt= that matches nothing
nnx.state(mlp, "parmas")  # type: ignore[nnx-collection]  # pyright: ignore[reportDeprecated]
nnx.Optimizer(mlp, optax.sgd(0.1), wrt=nnx.Cache)  # type: ignore[nnx-wrt]  # pyright: ignore[reportDeprecated]
nnx.split(mlp, nnx.Cache, ...)  # type: ignore[nnx-unmatched-filter]  # pyright: ignore[reportDeprecated]

# containers: element States are checked
lm = TransformerLM(rngs=rngs)
nnx.state(lm).blocks[0].attn.qurey  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(lm.blocks[0]).mlpp  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(lm).heads["lm"].kernl  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# a subclass kind went to the first filter that matches it
lora = LoRAMLP(rngs=rngs)
g2, lora_params, base_params, lora_rest = nnx.split(lora, nnx.LoRAParam, nnx.Param, ...)
base_params.adapted.lora.lora_a  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# inheritance across files: the subclass's fields and the base's are both checked
clf = nnx.state(Classifier(rngs=rngs))
clf.haed  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
clf.embed.kernl  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# a generic module: the known part is still checked
nnx.state(Wrapper(nnx.Linear(2, 2, rngs=rngs), rngs=rngs)).scael  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# seed 000 fields: a Param filter keeps nnx.ref("params"), removes the Count field
nnx.state(Seed000(), nnx.Param).steps  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]

# a field named like a State method: attribute access reaches the method (as at run time)
nnx.state(Stack(True, rngs=rngs)).merge.kernel  # type: ignore[attr-defined]  # pyright: ignore[reportFunctionMemberAccess]

# an attribute of unknown type switches off checks for that part only
partial = Partial(None, rngs=rngs)
nnx.state(partial).linear.kernl  # type: ignore[nnx-state-path]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(partial, nnx.BatchStat).linear  # type: ignore[nnx-filtered-out]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
calls: str = nnx.state(partial).calls  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]  # an imported kind's value type

# nnx's own objects ship State classes too
streams = nnx.Rngs(0, dropout=1)
nnx.state(nnx.Optimizer(nnx.Linear(2, 2, rngs=streams), optax.sgd(0.1))).stpe  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(streams).dropout.kye  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
nnx.state(nnx.metrics.Average()).totl  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]
