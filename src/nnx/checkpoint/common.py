"""What both checkpoint back ends share: what a target wants, how keys are stored,
how a saved checkpoint is compared against a target, and the errors.

A *target* is where a checkpoint is restored: a module (concrete, or abstract
with ``jax.ShapeDtypeStruct`` leaves) or a State. Each of its leaves is
described by a ``LeafSpec`` (kind, shape, dtype, sharding); a checkpoint is
described the same way, and the comparison of the two either passes or raises
one ``CheckpointMismatchError`` that lists every missing, unexpected and
mismatched path, before anything is read into the target.

Typed PRNG key arrays (dtype ``key<fry>``) cannot be written by array
libraries, so they are stored as their raw ``uint32`` key data and wrapped
again on restore with the implementation recorded in the checkpoint (or taken
from the target).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import jax
import numpy as np

from nnx.filters import Filter, LeafKind, Path
from nnx import jaxapi
from nnx.jaxapi import device_put, is_key_dtype, shape_dtype, wrap_key_data
from nnx.graph import state as state_of, update
from nnx.objects import Object
from nnx.state import State, path_str
from nnx.variables import Variable


class CheckpointError(Exception):
    """A checkpoint could not be written or read (missing, truncated, corrupted, not nnx)."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The checkpoint does not fit the target; nothing was restored.

    ``missing``: paths the target has and the checkpoint lacks; ``unexpected``:
    the reverse; ``mismatched``: paths in both whose kind, shape or dtype differ.
    Each list is sorted, so the report reads the same on every run whatever
    order the checkpoint's metadata came in.
    """

    def __init__(self, where: str, missing: list[str], unexpected: list[str], mismatched: list[str]) -> None:
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        lines = [f"{where}: the checkpoint does not fit the target; nothing was restored."]
        if self.missing:
            lines.append(f"  missing from the checkpoint ({len(missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected in the checkpoint ({len(unexpected)}): {', '.join(self.unexpected)}")
        if self.mismatched:
            lines.append(f"  mismatched ({len(mismatched)}):\n    " + "\n    ".join(self.mismatched))
        lines.append(
            "Restore into a model built with the same configuration, pass filters to restore a "
            "part (e.g. nnx.Param), or load the file with nnx.checkpoint.load to inspect it."
        )
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class LeafSpec:
    """What one leaf is: its kind name, shape, dtype name and key implementation (if a key)."""

    kind: str
    shape: tuple[int, ...]
    dtype: str
    key_impl: str | None = None

    def differences(self, other: LeafSpec) -> str:
        """A readable account of how ``other`` differs from this one ('' if it does not)."""
        out: list[str] = []
        if self.kind != other.kind:
            out.append(f"kind {other.kind} (target) vs {self.kind} (checkpoint)")
        if self.shape != other.shape:
            out.append(f"shape {other.shape} (target) vs {self.shape} (checkpoint)")
        if self.dtype != other.dtype:
            out.append(f"dtype {other.dtype} (target) vs {self.dtype} (checkpoint)")
        return "; ".join(out)


def kind_name(kind: LeafKind) -> str:
    """How a leaf kind is written in a checkpoint: ``module.QualName``, or ``array``."""
    return "array" if kind is None else f"{kind.__module__}.{kind.__qualname__}"


def resolve_kind(name: str) -> LeafKind:
    """The Variable kind named ``name`` (as ``kind_name`` wrote it), among the loaded classes."""
    if name == "array":
        return None
    pending: list[type[Variable[Any]]] = [Variable]
    while pending:
        kind = pending.pop()
        if kind_name(kind) == name:
            return kind
        pending.extend(kind.__subclasses__())
    raise CheckpointError(
        f"The checkpoint holds a Variable kind {name!r} that is not defined in this program; "
        "import the module that defines it, or restore into a model (restore(path, model))."
    )


def is_key(value: Any) -> bool:
    """Whether ``value`` (an array or ShapeDtypeStruct) is a typed PRNG key array."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and is_key_dtype(dtype)


def key_impl_name(value: Any) -> str:
    """The name of the PRNG implementation of a key array or key ShapeDtypeStruct (e.g. 'fry')."""
    impl: Any = value.dtype._impl  # the extended dtype of a key array knows its implementation
    return str(impl.name)


def key_data_spec(value: Any) -> jax.ShapeDtypeStruct:
    """The shape/dtype of the raw key data of a key array (its shape plus the key's own)."""
    return jaxapi.key_data_spec(tuple(value.shape), value.dtype)


def wrap_key(data: Any, impl: str) -> jax.Array:
    """Raw ``uint32`` key data back to a typed key array of implementation ``impl``."""
    return wrap_key_data(data, impl)


def spec_of(kind: LeafKind, value: Any) -> LeafSpec:
    """The LeafSpec of a leaf value (array, key array or ShapeDtypeStruct)."""
    if is_key(value):
        return LeafSpec(kind_name(kind), tuple(value.shape), "key", key_impl_name(value))
    shape = tuple(getattr(value, "shape", np.shape(value)))
    dtype = getattr(value, "dtype", None)
    dtype_name = np.dtype(dtype).name if dtype is not None else np.asarray(value).dtype.name
    return LeafSpec(kind_name(kind), shape, dtype_name)


def target_state(target: Any, filters: Sequence[Filter], where: str) -> State[Any]:
    """The State a target wants restored: a module's state (or a State) selected by ``filters``."""
    if isinstance(target, Object):
        return select(state_of(target), filters)
    if isinstance(target, State):
        st: State[Any] = target  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to State[Unknown]
        return select(st, filters)
    raise TypeError(
        f"{where}: the target must be a module or an nnx.State, got {type(target).__name__}. "
        "Build the model first (or an abstract one with jax.eval_shape) and restore into it."
    )


def select(st: State[Any], filters: Sequence[Filter]) -> State[Any]:
    """The leaves of ``st`` that any of ``filters`` matches (all of them without filters)."""
    if not filters:
        return st
    return st.filter(filters[0] if len(filters) == 1 else tuple(filters))


def select_specs(specs: dict[Path, LeafSpec], filters: tuple[Filter, ...]) -> dict[Path, LeafSpec]:
    """The saved leaves that ``filters`` select, judged by their recorded kinds."""
    if not filters:
        return specs
    flat: dict[Path, Any] = {}
    for p, spec in specs.items():
        placeholder = shape_dtype(spec.shape, np.float32)  # filters look at paths and kinds
        try:
            kind = resolve_kind(spec.kind)
        except CheckpointError:
            kind = None  # a kind this program does not define: only path filters can select it
        flat[p] = placeholder if kind is None else kind(placeholder)
    chosen = select(State.from_flat_state(flat), filters)
    return {p: specs[p] for p in chosen.paths}


def checksum(host: np.ndarray[Any, Any]) -> int:
    """CRC-32 of an array's bytes (C order), computed without copying a contiguous array."""
    return zlib.crc32(np.asarray(host, order="C").reshape(-1).view(np.uint8).data)


def compare(where: str, saved: dict[Path, LeafSpec], wanted: dict[Path, LeafSpec]) -> None:
    """Raise ``CheckpointMismatchError`` unless ``saved`` and ``wanted`` describe the same leaves."""
    missing = [path_str(p) for p in wanted if p not in saved]
    unexpected = [path_str(p) for p in saved if p not in wanted]
    mismatched: list[str] = []
    for path, want in wanted.items():
        have = saved.get(path)
        if have is not None:
            diff = have.differences(want)
            if diff:
                mismatched.append(f"{path_str(path)}: {diff}")
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(where, missing, unexpected, mismatched)


def place_like(value: Any, like: Any) -> Any:
    """``value`` (host data) as a device array laid out like ``like`` (its sharding, if any).

    A NumPy leaf stays a NumPy array, and so does a value whose dtype JAX would
    narrow (64-bit types while ``jax_enable_x64`` is off): a restore is exact.
    """
    sharding = getattr(like, "sharding", None)
    if isinstance(like, np.ndarray) or (sharding is None and not is_key(value) and jax.dtypes.canonicalize_dtype(value.dtype) != value.dtype):
        return np.array(value)
    return device_put(value, sharding)


def write_back(target: Any, wanted: State[Any], values: list[Any]) -> Any:
    """Put restored ``values`` (in ``wanted``'s leaf order) into the target; return the target.

    A module is updated in place (its cells get the new arrays); a State target
    is left alone and a new State of the same structure is returned.
    """
    restored = State._make(wanted._layout, values)
    if isinstance(target, Object):
        update(target, restored)
        return target
    return restored
