"""Dtype promotion shared by the layers.

A layer computes in ``dtype`` when one is given (e.g. bfloat16 activations
with float32 parameters); otherwise in the dtype JAX would promote the inputs
and the parameters to. ``None`` entries (an absent bias) pass through.
"""

from __future__ import annotations

from typing import Any, TypeVar

import jax
import jax.numpy as jnp

Dtype = Any  # anything jnp accepts as a dtype: jnp.float32, "bfloat16", np.dtype(...)
A = TypeVar("A", bound="tuple[jax.Array | None, ...]")


def promote_dtype(arrays: A, *, dtype: Dtype | None = None) -> A:
    """Cast every array of ``arrays`` to ``dtype`` (or their common dtype); keep ``None``s."""
    if dtype is None:
        dtype = jnp.result_type(*(a for a in arrays if a is not None))
    cast = tuple(None if a is None else a.astype(dtype) for a in arrays)
    return cast  # type: ignore[return-value]  # pyright: ignore[reportReturnType]  # same arity as the input tuple


def canonical_axes(axes: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Non-negative axis numbers for an ``ndim``-dimensional input (``-1`` -> ``ndim - 1``)."""
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % ndim for a in axes))
