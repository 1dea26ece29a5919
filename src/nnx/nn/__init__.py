"""``nnx.nn``: the layers, initializers and activations (all re-exported at ``nnx.``).

One concept per module: ``linear``, ``batch_norm``, ``dropout``, ...; shared
helpers live in ``dtypes`` (dtype promotion), ``norm_stats`` (normalization
statistics) and ``metadata`` (sharding metadata carried by initializers).
"""

from nnx.nn import activations, initializers
from nnx.nn.activations import *  # noqa: F403 - the jax.nn activations, listed in activations.__all__
from nnx.nn.batch_norm import BatchNorm
from nnx.nn.dropout import Dropout
from nnx.nn.linear import Linear
from nnx.nn.metadata import WithMetadata, with_metadata, with_partitioning

__all__: list[str] = ["BatchNorm", "Dropout", "Linear", "WithMetadata", "initializers", "with_metadata", "with_partitioning"]
__all__ += activations.__all__
