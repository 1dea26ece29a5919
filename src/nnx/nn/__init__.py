"""``nnx.nn``: the layers, initializers and activations (all re-exported at ``nnx.``).

One concept per module: ``linear``, ``batch_norm``, ``dropout``, ...; shared
helpers live in ``dtypes`` (dtype promotion), ``norm_stats`` (normalization
statistics) and ``metadata`` (sharding metadata carried by initializers).
"""

from nnx.nn import activations, initializers
from nnx.nn.activations import (
    celu,
    elu,
    gelu,
    glu,
    hard_sigmoid,
    hard_silu,
    hard_swish,
    hard_tanh,
    identity,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    logsumexp,
    mish,
    one_hot,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    soft_sign,
    softmax,
    softplus,
    standardize,
    swish,
    tanh,
)
from nnx.nn.attention import (
    combine_masks,
    dot_product_attention,
    dot_product_attention_weights,
    make_attention_mask,
    make_causal_mask,
)
from nnx.nn.batch_norm import BatchNorm
from nnx.nn.conv import Conv
from nnx.nn.conv_transpose import ConvTranspose
from nnx.nn.dropout import Dropout
from nnx.nn.einsum import Einsum
from nnx.nn.embed import Embed
from nnx.nn.group_norm import GroupNorm
from nnx.nn.layer_norm import LayerNorm
from nnx.nn.linear import Linear
from nnx.nn.linear_general import LinearGeneral
from nnx.nn.metadata import WithMetadata, with_metadata, with_partitioning
from nnx.nn.lora import LoRA, LoRALinear
from nnx.variables import LoRAParam
from nnx.nn.multi_head_attention import MultiHeadAttention
from nnx.nn.pooling import avg_pool, max_pool, min_pool, pool
from nnx.nn.recurrent import RNN, GRUCell, LSTMCell, RecurrentCell
from nnx.nn.rms_norm import RMSNorm

__all__ = [
    "activations",
    "BatchNorm",
    "Conv",
    "ConvTranspose",
    "Dropout",
    "Einsum",
    "Embed",
    "GRUCell",
    "GroupNorm",
    "LSTMCell",
    "LayerNorm",
    "LoRA",
    "LoRALinear",
    "LoRAParam",
    "RNN",
    "RecurrentCell",
    "Linear",
    "LinearGeneral",
    "MultiHeadAttention",
    "RMSNorm",
    "combine_masks",
    "dot_product_attention",
    "dot_product_attention_weights",
    "make_attention_mask",
    "make_causal_mask",
    "avg_pool",
    "max_pool",
    "min_pool",
    "pool",
    "WithMetadata",
    "initializers",
    "with_metadata",
    "with_partitioning",
    "celu",
    "elu",
    "gelu",
    "glu",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "identity",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "mish",
    "one_hot",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "soft_sign",
    "softmax",
    "softplus",
    "standardize",
    "swish",
    "tanh",
    "InstanceNorm",
    "OptimizedLSTMCell",
    "PReLU",
    "SimpleCell",
    "SpectralNorm",
    "WeightNorm",
]

# -- issue 12: layers Flax 0.12 has -----------------------------------------------
from nnx.nn.instance_norm import InstanceNorm
from nnx.nn.optimized_lstm_cell import OptimizedLSTMCell
from nnx.nn.prelu import PReLU
from nnx.nn.simple_cell import SimpleCell
from nnx.nn.spectral_norm import SpectralNorm
from nnx.nn.weight_norm import WeightNorm
