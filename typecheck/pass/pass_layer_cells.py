"""The library's layers hold cells: ``layer.kernel`` is ``Param[Array]``, ``[...]`` the array."""

from typing import Any

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx

rngs = nnx.Rngs(0)
linear = nnx.Linear(2, 3, rngs=rngs)
assert_type(linear.kernel, nnx.Param[jax.Array])
assert_type(linear.bias, nnx.Param[jax.Array] | None)  # None with use_bias=False
assert_type(linear.kernel[...], jax.Array)
assert_type(linear.kernel.value, jax.Array)
assert_type(linear.kernel.get_value(), jax.Array)
assert_type(jnp.dot(jnp.ones((1, 2)), linear.kernel[...]), jax.Array)
assert_type(linear.kernel.get_metadata(), dict[str, Any])
assert_type(linear.kernel.ndim, int)
assert_type(linear.kernel.size, int)
linear.kernel[...] = jnp.zeros((2, 3))  # writes into the cell
linear.kernel.value = jnp.zeros((2, 3))
linear.kernel.set_value(jnp.zeros((2, 3)))
if linear.bias is not None:
    assert_type(linear.bias[...], jax.Array)

bn = nnx.BatchNorm(3, rngs=rngs)
assert_type(bn.mean, nnx.BatchStat[jax.Array])
assert_type(bn.scale, nnx.Param[jax.Array] | None)
assert_type(nnx.Embed(4, 3, rngs=rngs).embedding, nnx.Param[jax.Array])
assert_type(nnx.LoRA(2, 1, 3, rngs=rngs).lora_a, nnx.LoRAParam)
assert_type(nnx.LoRA(2, 1, 3, rngs=rngs).lora_a[...], jax.Array)
# the adapter cells are of the kind lora_param_type names (LoRA is generic over it)
assert_type(nnx.LoRA(2, 1, 3, lora_param_type=nnx.Param, rngs=rngs).lora_a, nnx.Param[jax.Array])
assert_type(nnx.LoRA(2, 1, 3, lora_param_type=nnx.LoRAParam, rngs=rngs), nnx.LoRA[nnx.LoRAParam])
assert_type(nnx.LoRA(2, 1, 3, lora_param_type=nnx.Param, rngs=rngs), nnx.LoRA[nnx.Param[jax.Array]])
assert_type(nnx.MultiHeadAttention(2, 4, rngs=rngs).cached_key, nnx.Cache[jax.Array] | None)
assert_type(nnx.GRUCell(2, 3, rngs=rngs).dense_i.kernel, nnx.Param[jax.Array])
assert_type(nnx.LSTMCell(2, 3, rngs=rngs).if_.kernel, nnx.Param[jax.Array])
