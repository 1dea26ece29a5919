"""Dtype promotion shared by the layers.

A layer computes in ``dtype`` when one is given (e.g. bfloat16 activations
with float32 parameters); otherwise in the dtype JAX would promote the inputs
and the parameters to. ``None`` entries (an absent bias) pass through.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import jax
import jax.numpy as jnp

Dtype = Any  # anything jnp accepts as a dtype: jnp.float32, "bfloat16", np.dtype(...)
A = TypeVar("A", bound="tuple[jax.Array | None, ...]")


def promote_dtype(arrays: A, *, dtype: Dtype | None = None, inexact: bool = True) -> A:
    """Cast every array of ``arrays`` to ``dtype`` (or their common dtype); keep ``None``s.

    With ``inexact`` (the default) an inferred integer or boolean dtype
    becomes a float one (``int32`` inputs compute in ``float32``), and an
    explicit ``dtype`` that is not a float or complex one is an error.
    """
    if dtype is None:
        dtype = jnp.result_type(*(a for a in arrays if a is not None))
        if inexact and not jnp.issubdtype(dtype, jnp.inexact):
            dtype = jnp.promote_types(jnp.float32, dtype)
    if inexact and not jnp.issubdtype(dtype, jnp.inexact):
        raise ValueError(f"promote_dtype: dtype={dtype} is not a float or complex dtype; layers compute in one.")
    cast = tuple(None if a is None else jnp.asarray(a, dtype) for a in arrays)
    return cast  # type: ignore[return-value]  # pyright: ignore[reportReturnType]  # same arity as the input tuple


#: What a layer's ``promote_dtype=`` takes: ``fn((x, kernel, bias), dtype=...)`` returns the
#: arrays (same number, same order, ``None`` kept) cast as the layer should compute. The
#: default is :func:`promote_dtype`; ``lambda arrays, **kw: arrays`` computes in the dtypes
#: the arrays already have. (A ``Callable`` alias rather than a Protocol: a layer's
#: attribute of a Protocol type could be a submodule, and its State would say so.)
PromoteDtypeFn = Callable[..., tuple[Any, ...]]


def canonical_axes(axes: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Non-negative axis numbers for an ``ndim``-dimensional input (``-1`` -> ``ndim - 1``)."""
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % ndim for a in axes))
