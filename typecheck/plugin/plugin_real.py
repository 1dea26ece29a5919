"""The plugin's exact messages on real models (library layers, containers, LoRA), run by
tests/test_typecheck.py."""

import optax

import nnx
from typecheck.real.models import MLP, LoRAMLP, TransformerLM

mlp = MLP(rngs=nnx.Rngs(0))
state = nnx.state(mlp)
state.l1.kernl  # E: Linear has no state path "kernl"; its state fields are: bias, kernel  [nnx-state-path]
state.bn.momentum  # E: "momentum" is a static field of BatchNorm (it lives in the GraphDef); its state fields are: bias, mean, scale, var  [nnx-state-path]
params = nnx.state(mlp, nnx.Param)
params.drop.rngs  # E: "drop" (Dropout) of MLP was removed by the filter; this State holds only Param: bn, l1, l2  [nnx-filtered-out]
nnx.split(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), nnx.Param, ...)
nnx.Optimizer(mlp, optax.sgd(0.1), wrt=nnx.Cache)  # E: nnx.Optimizer: wrt= matches no state of MLP, so the gradient would be empty; its state is: bn.bias: Param, bn.mean: BatchStat, bn.scale: Param, bn.var: BatchStat, drop.rngs.key: RngKey, drop.rngs.count: RngCount, l1.bias: Param, l1.kernel: Param, l2.bias: Param, l2.kernel: Param  [nnx-wrt]
lm_state = nnx.state(TransformerLM(rngs=nnx.Rngs(0)))
lm_state.blocks[0].attn.qurey  # E: MultiHeadAttention has no state path "qurey"; its state fields are: attention_weights, cache_index, cached_key, cached_value, key, key_ln, out, query, query_ln, rngs, value  [nnx-state-path]
g, lora_params, base_params, rest = nnx.split(LoRAMLP(rngs=nnx.Rngs(0)), nnx.LoRAParam, nnx.Param, ...)
base_params.adapted.lora.lora_a  # E: "lora" (LoRA) of LoRALinear was removed by the filter; this State holds only Param: bias, kernel  [nnx-filtered-out]
reveal_type(lora_params)  # N: Revealed type is "nnx.state.State[typecheck.real.models.LoRAMLP, nnx.variables.LoRAParam]"
