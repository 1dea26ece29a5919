"""Initializers: functions ``(key, shape, dtype) -> array`` that make a layer's first weights.

These are JAX's own (``jax.nn.initializers``) under the names users expect at
``nnx.initializers``; layers take them as ``kernel_init=``, ``bias_init=`` and
so on. ``nnx.with_partitioning`` wraps one to attach sharding axis names.
"""

from __future__ import annotations

from jax.nn.initializers import (
    Initializer,
    constant,
    delta_orthogonal,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    normal,
    ones,
    orthogonal,
    truncated_normal,
    uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
    zeros,
)



def zeros_init() -> Initializer:
    """Flax's spelling of ``zeros`` as a factory: ``zeros_init()`` is the ``zeros`` initializer."""
    return zeros


def ones_init() -> Initializer:
    """Flax's spelling of ``ones`` as a factory: ``ones_init()`` is the ``ones`` initializer."""
    return ones


__all__ = [
    "Initializer", "ones_init", "zeros_init", "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal",
    "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal",
    "ones", "orthogonal", "truncated_normal", "uniform", "variance_scaling", "xavier_normal",
    "xavier_uniform", "zeros",
]
