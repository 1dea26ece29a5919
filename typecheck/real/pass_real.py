"""Valid code on the real models: both checkers must accept every line, and it runs
(``tests/test_typecheck.py`` executes it)."""

import jax
import jax.numpy as jnp
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

import nnx
from typecheck.real.kinds import Count, Partial, Seed000
from typecheck.real.models import (
    CNN,
    MLP,
    VAE,
    Affine,
    Classifier,
    LayerConfig,
    LoRAMLP,
    Probe,
    ScanMLP,
    Sharded,
    Sower,
    Stack,
    TransformerLM,
    Wrapper,
)

rngs = nnx.Rngs(0)

# library layers in a user model
mlp = MLP(rngs=rngs)
state = nnx.state(mlp)
state.bn.mean
state.bn.var
state.l1.kernel
state.drop.rngs
graphdef, params, rest = nnx.split(mlp, nnx.Param, ...)
params.bn.scale
params.l1.kernel
rest.bn.mean
dense_only = nnx.Linear(2, 2, rngs=rngs)
g1, p1, nothing_left = nnx.split(dense_only, nnx.Param, ...)  # a trailing ... that collects nothing
nnx.Optimizer(mlp, optax.sgd(0.1), wrt=nnx.Param)
nnx.state(mlp, nnx.BatchStat).bn.mean
nnx.state(mlp, nnx.RngState).drop

cnn = CNN(rngs=rngs)
cnn_state = nnx.state(cnn)
cnn_state.conv.kernel
cnn_state.ln.scale
cnn_state.embed.embedding
cnn_state["bn"]["mean"]

vae = VAE(rngs=rngs)
vae_state = nnx.state(vae)
vae_state.encoder.hidden.bias
vae_state.encoder.noise
vae_state.decoder.kernel

# a library layer on its own: its shipped State class, no stubs needed
bn_alone = nnx.state(nnx.BatchNorm(2, rngs=rngs))
bn_alone.mean
bn_alone["var"]


class Scaled(nnx.Linear):
    """A subclass of a library layer defined here (pyright reads this source, not a stub)."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        super().__init__(2, 2, rngs=rngs)
        self.gain = nnx.Param(jnp.ones(()))


nnx.state(Scaled(rngs=rngs)).gain  # its own field: not hidden by Linear's State class

# containers
lm = TransformerLM(rngs=rngs)
lm_state = nnx.state(lm)
lm_state.blocks[0].attn.query.kernel
lm_state.blocks[1].ln.scale
lm_state.heads["lm"].kernel
lm_state.norms[0].scale
lm_params = nnx.state(lm, nnx.Param)
lm_params.embed.embedding
nnx.state(lm.blocks[0]).mlp.kernel

scan = ScanMLP(rngs=rngs)
nnx.state(scan).layers.kernel
nnx.state(scan).bn.mean

lora = LoRAMLP(rngs=rngs)
g2, lora_params, base_params, lora_rest = nnx.split(lora, nnx.LoRAParam, nnx.Param, ...)
lora_params.adapted.lora.lora_a
base_params.adapted.kernel
base_params.out.kernel
nnx.Optimizer(lora, optax.sgd(0.1), wrt=nnx.LoRAParam)

sharded = Sharded(rngs=rngs)
nnx.state(sharded).hidden.kernel

# inheritance across files
clf = Classifier(rngs=rngs)
clf_state = nnx.state(clf)
clf_state.embed.kernel
clf_state.norm.scale
clf_state.head.bias

# generic, Protocol- and Module-typed submodules, shared local variable
wrapped = Wrapper(nnx.Linear(2, 2, rngs=rngs), rngs=rngs)
nnx.state(wrapped).inner
nnx.state(wrapped).scale
nnx.state(wrapped, nnx.Param).inner
probe = Probe(nnx.Linear(2, 2, rngs=rngs), nnx.Linear(2, 2, rngs=rngs), rngs=rngs)
nnx.state(probe).features
nnx.state(probe).trunk
nnx.state(probe).left.kernel
nnx.state(probe).left.bias

# an attribute of unknown type: that part only is unchecked
partial = Partial(nnx.Linear(2, 2, rngs=rngs), rngs=rngs)
nnx.state(partial).extra
nnx.state(partial).linear.kernel
calls: jax.Array = nnx.state(partial).calls

# seed 000 fields and a constant collection
seed = Seed000()
nnx.state(seed, nnx.Param).w
nnx.state(seed, "step_counts").steps
nnx.state(seed, Count).steps

# Sequential, Optional submodule, fields named like State methods
stack = Stack(True, rngs=rngs)
stack_state = nnx.state(stack)
stack_state.seq.layers
stack_state.proj
stack_state["merge"]["kernel"]  # a field named like a State method: by key
stack_state["keys"]["bias"]
nnx.split(stack, nnx.Param)

# sown intermediates of an imported model
sower = Sower(rngs=rngs)
sower(jnp.ones((1, 2)))
nnx.state(sower, nnx.Intermediate).activations
nnx.pop(sower, nnx.Intermediate)

# a non-literal key
name: str = "l1"
state[name]

# dataclass defaults and @nnx.dataclass constructors of an imported module
config = LayerConfig()
wide = LayerConfig(width=8)
affine = Affine(jnp.ones((2, 2)), jnp.zeros(2))
nnx.state(affine).w

# bare State annotations
def count_leaves(s: nnx.State) -> int:
    return len(s.paths)


count_leaves(state)
zeros: jax.Array = jnp.zeros((2,))

# filters seen by both checkers: each part holds exactly the leaves its filter keeps
g3, p3, b3, r3 = nnx.split(mlp, nnx.Param, nnx.BatchStat, ...)
p3.l1.kernel
b3.bn.var
r3.drop
p4, b4 = nnx.state(mlp, nnx.Param, nnx.BatchStat)
b4.bn.mean
nnx.state(mlp, "params").l2.bias
nnx.state(mlp, "batch_stats").bn.var
nnx.Optimizer(mlp, optax.sgd(0.1), wrt="params")
collection: str = "params"
nnx.state(mlp, collection)
lm_rest = nnx.split(lm, nnx.Param, ...)[2]
nnx.state(lora, nnx.LoRAParam).adapted.lora.lora_b

# nnx's own objects ship State classes too
streams = nnx.Rngs(0, dropout=1)
opt_step: jax.Array = nnx.state(nnx.Optimizer(nnx.Linear(2, 2, rngs=streams), optax.sgd(0.1))).step
stream_key: jax.Array = nnx.state(streams).dropout.key
average_total: jax.Array = nnx.state(nnx.metrics.Welford()).mean
