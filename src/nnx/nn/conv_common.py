"""What ``Conv`` and ``ConvTranspose`` share: argument normalisation and batch handling.

Inputs are channels-last: ``(*batch, *spatial, features)``. Any number of
leading batch axes (including none) is accepted; they are flattened into one
for ``lax`` and restored afterwards.
"""

from __future__ import annotations

from typing import Sequence, Union

import jax

#: ``"SAME"``, ``"VALID"``, ``"CIRCULAR"``, ``"CAUSAL"``, one int for every side, or per
#: spatial axis an int (both sides) or a ``(low, high)`` pair.
PaddingLike = Union[str, int, Sequence[Union[int, tuple[int, int]]]]
LaxPadding = Union[str, list[tuple[int, int]]]


def per_axis(value: int | Sequence[int] | None, n: int, name: str, where: str) -> tuple[int, ...]:
    """``value`` repeated for ``n`` spatial axes (``None``: 1, as in Flax), or checked to have ``n`` entries."""
    if value is None:
        return (1,) * n
    if isinstance(value, int):
        return (value,) * n
    values = tuple(value)
    if len(values) != n:
        raise ValueError(f"{where}: {name}={values} has {len(values)} entries for {n} spatial axes; give {n}.")
    return values


def lax_padding(padding: PaddingLike, n: int, where: str) -> LaxPadding:
    """Padding in the form ``lax`` takes: a mode string or one ``(low, high)`` pair per axis."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID", "CIRCULAR", "CAUSAL"):
            raise ValueError(
                f"{where}: padding={padding!r} is not a mode; use 'SAME', 'VALID', 'CIRCULAR', "
                "'CAUSAL', an int, or (low, high) pairs per spatial axis."
            )
        return mode
    if isinstance(padding, int):
        return [(padding, padding)] * n
    pairs = [(p, p) if isinstance(p, int) else (int(p[0]), int(p[1])) for p in padding]
    if len(pairs) != n:
        raise ValueError(f"{where}: padding={padding!r} has {len(pairs)} entries for {n} spatial axes; give {n}.")
    return pairs


def flatten_batch(x: jax.Array, n_spatial: int, where: str) -> tuple[jax.Array, tuple[int, ...]]:
    """``x`` with exactly one leading batch axis, and the batch shape to restore."""
    if x.ndim < n_spatial + 1:
        raise ValueError(
            f"{where}: expected an input (*batch, *{n_spatial} spatial axes, features), got shape {x.shape}."
        )
    batch = x.shape[: x.ndim - n_spatial - 1]
    return x.reshape((-1, *x.shape[x.ndim - n_spatial - 1 :])), batch


def restore_batch(y: jax.Array, batch: tuple[int, ...]) -> jax.Array:
    """Undo ``flatten_batch`` on an output with one leading batch axis."""
    return y.reshape((*batch, *y.shape[1:]))


def dilated(kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """The extent of a kernel after dilation: ``(k - 1) * d + 1`` per axis."""
    return tuple((k - 1) * d + 1 for k, d in zip(kernel_size, dilation))


def channels_last(n: int) -> tuple[str, str, str]:
    """``lax`` dimension numbers for ``(batch, *spatial, in)`` inputs, ``(*spatial, in, out)``
    kernels and ``(batch, *spatial, out)`` outputs with ``n`` spatial axes."""
    spatial = "DHW"[3 - n :] if n <= 3 else "".join(chr(ord("a") + i) for i in range(n))
    return (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C")
