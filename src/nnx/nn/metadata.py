"""Sharding metadata hooks: how a layer's initializer tells its cell about axis names.

``nnx.with_partitioning(nnx.initializers.lecun_normal(), ("embed", "mlp"))``
is still an initializer; a layer that builds a parameter with it records
``sharding=("embed", "mlp")`` in the cell's metadata, where a sharding pass
(``nnx.state(model)`` + ``State.metadata(path)``) can read it. Every layer calls
``record_metadata`` after creating a parameter, so the hook applies to all of them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping

import jax

from nnx.fields import cell
from nnx.nn.dtypes import Dtype
from nnx.sharding import with_partitioning  # one mechanism for axis names: a Boxed initializer result

__all__ = ["Initializer", "WithMetadata", "record_metadata", "with_metadata", "with_partitioning"]

Initializer = Callable[..., jax.Array]

#: The default of the layers' ``kernel_metadata=``-style arguments: no extra metadata.
NO_METADATA: Mapping[str, Any] = MappingProxyType({})


class WithMetadata:
    """An initializer that also carries metadata for the cell it initialises."""

    def __init__(self, initializer: Initializer, **metadata: Any) -> None:
        self.initializer = initializer
        self.metadata = metadata

    def __call__(self, key: jax.Array, shape: tuple[int, ...], dtype: Dtype = None) -> jax.Array:
        if dtype is None:
            return self.initializer(key, shape)
        return self.initializer(key, shape, dtype)

    def __repr__(self) -> str:
        return f"with_metadata({self.initializer!r}, {self.metadata!r})"


def with_metadata(initializer: Initializer, **metadata: Any) -> WithMetadata:
    """Wrap ``initializer`` so the cell it fills gets ``metadata`` (any keys)."""
    return WithMetadata(initializer, **metadata)


def record_metadata(
    module: object, name: str, initializer: object, metadata: Mapping[str, Any] = NO_METADATA
) -> None:
    """Copy the metadata an initializer carries (if any) into the cell ``module.name``, then
    ``metadata`` (a layer's ``kernel_metadata=``/``bias_metadata=``... argument) over it."""
    merged = dict(initializer.metadata) if isinstance(initializer, WithMetadata) else {}
    merged.update(metadata)
    if merged:
        cell(module, name).set_metadata(**merged)
