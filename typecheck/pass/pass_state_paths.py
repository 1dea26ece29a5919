"""State paths of a stubbed model: mypy types them with the plugin, pyright with the
generated stubs (``stubs/typecheck/models.pyi``); both agree on the leaf types."""

import jax

import nnx
from typecheck.models import Model, Probe

model = Model(rngs=nnx.Rngs(0))
state = nnx.state(model)

w: jax.Array = state.block.linear.w  # attribute paths, recursing into submodules
b: jax.Array = state["block"]["linear"]["b"]  # item paths
mean: jax.Array = state.block.bn.mean
head_w: jax.Array = state.head.w

graphdef, params, rest = nnx.split(model, nnx.Param, ...)
scale: jax.Array = params.block.bn.scale  # kept by the filter
stats = nnx.state(model, nnx.BatchStat)
var: jax.Array = stats.block.bn.var

state.block.linear.w = w  # writing a path
nnx.update(model, state)  # a State of the same module
same: Model = nnx.merge(graphdef, params, rest)

probe = Probe()
intermediates = nnx.pop(probe, nnx.Intermediate)  # sown by __call__: the plugin knows the field
cache = nnx.state(probe, nnx.Cache)
