"""The safetensors back end: one file, one tensor per state path.

Tensors are named by their dotted state path (``block.linear.w``). The
file's metadata (``__metadata__`` in the safetensors header) records, per
tensor, the exact path (so the integer index ``0`` and the key ``"0"`` stay
distinct), the Variable kind, the PRNG implementation of key arrays and a
CRC-32 of the bytes, so that a corrupted file is refused instead of restored.
The file is written to a temporary name in the same directory and renamed
into place, so a crash never leaves a half-written checkpoint behind.

The ``safetensors`` package is an optional dependency (``pip install safetensors``).
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path as FilePath
from typing import Any, Callable, TypeVar

import jax
import ml_dtypes
import numpy as np

from nnx.checkpoint.common import (
    CheckpointError,
    LeafSpec,
    checksum,
    compare,
    is_key,
    key_impl_name,
    kind_name,
    place_like,
    resolve_kind,
    select_specs,
    spec_of,
    target_state,
    wrap_key,
    write_back,
)
from nnx.filters import Filter, Path
from nnx.state import State, path_str

N = TypeVar("N")

FORMAT = "nnx.safetensors/1"

#: safetensors dtype codes and the NumPy dtypes they hold.
_DTYPES: dict[str, np.dtype[Any]] = {
    code: np.dtype(t)
    for code, t in {
        "BOOL": np.bool_,
        "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
        "U32": np.uint32, "I32": np.int32, "U64": np.uint64, "I64": np.int64,
        "F16": np.float16, "F32": np.float32, "F64": np.float64,
        "BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2,
    }.items()
}
_SUPPORTED = set(_DTYPES.values())


def _safetensors() -> Any:
    try:
        import safetensors
        import safetensors.numpy  # noqa: F401  # pyright: ignore[reportUnusedImport]  # loads the submodule
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "nnx.checkpoint's safetensors back end needs the 'safetensors' package: "
            "pip install safetensors (or, in an nnx checkout, pip install -e '.[checkpoint]', "
            "which installs both back ends)."
        ) from None
    return safetensors


# -- save ------------------------------------------------------------------------


def save(path: str | os.PathLike[str], target: Any, /, *filters: Filter) -> FilePath:
    """Save a module's state (or a State), optionally only the leaves matching ``filters``.

    Returns the path written. The write is atomic: the old file (if any) stays
    intact until the new one is complete.
    """
    where = "nnx.checkpoint.save"
    st = target_state(target, filters, where)
    arrays, entries = _to_host(st, where)
    metadata = {"format": FORMAT, "nnx": json.dumps(entries)}
    writer = _safetensors().numpy.save_file
    return atomic_write(FilePath(path), lambda tmp: writer(arrays, str(tmp), metadata=metadata))


def _to_host(st: State[Any], where: str) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, Any]]:
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    entries: dict[str, Any] = {}
    layout = st._layout
    for path, kind, value in zip(layout.paths, layout.kinds, st.leaves):
        name = path_str(path)
        if name in arrays:
            raise ValueError(f"{where}: two state paths are both written as {name!r}; rename one of the attributes.")
        if isinstance(value, jax.ShapeDtypeStruct):
            raise TypeError(f"{where}: '{name}' is abstract ({value}); save a model that holds real arrays.")
        entry: dict[str, Any] = {"path": list(path), "kind": kind_name(kind)}
        if is_key(value):
            entry["key_impl"] = key_impl_name(value)
            entry["key_shape"] = list(value.shape)
            value = jax.random.key_data(value)
        host = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if host.dtype not in _SUPPORTED:
            raise TypeError(
                f"{where}: '{name}' has dtype {host.dtype}, which safetensors cannot store "
                f"(supported: {sorted(d.name for d in _SUPPORTED)}); cast it or use the orbax back end."
            )
        entry["crc32"] = checksum(host)
        arrays[name] = host
        entries[name] = entry
    return arrays, entries


def atomic_write(path: FilePath, write: Callable[[FilePath], object]) -> FilePath:
    """Have ``write`` fill a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``: readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# -- read ------------------------------------------------------------------------


class _Saved:
    """A parsed checkpoint file: per path, its spec and host array."""

    def __init__(self, specs: dict[Path, LeafSpec], arrays: dict[Path, np.ndarray[Any, Any]]) -> None:
        self.specs = specs
        self.arrays = arrays


def _read(path: str | os.PathLike[str], where: str) -> _Saved:
    file = FilePath(path)
    if not file.is_file():
        raise FileNotFoundError(f"{where}: no checkpoint file at {str(file)!r}.")
    raw = file.read_bytes()
    entries = _entries(raw, file, where)
    safetensors = _safetensors()
    try:
        tensors: list[tuple[str, dict[str, Any]]] = safetensors.deserialize(raw)
    except safetensors.SafetensorError as e:
        raise _damaged(file, where, str(e)) from None
    specs: dict[Path, LeafSpec] = {}
    arrays: dict[Path, np.ndarray[Any, Any]] = {}
    for name, tensor in tensors:
        entry = entries.get(name)
        dtype = _DTYPES.get(tensor["dtype"])
        if entry is None or dtype is None:
            raise _damaged(file, where, f"tensor {name!r} is not described by the nnx metadata")
        data: bytes = tensor["data"]
        if zlib.crc32(data) != entry["crc32"]:  # the raw bytes that checksum() hashed at save time
            raise _damaged(file, where, f"the bytes of {name!r} fail their checksum")
        array = np.frombuffer(data, dtype=dtype).reshape(tensor["shape"])
        leaf_path: Path = tuple(entry["path"])
        impl = entry.get("key_impl")
        if impl is None:
            specs[leaf_path] = LeafSpec(entry["kind"], tuple(array.shape), dtype.name)
        else:
            specs[leaf_path] = LeafSpec(entry["kind"], tuple(entry["key_shape"]), "key", impl)
        arrays[leaf_path] = array
    if len(specs) != len(entries):
        raise _damaged(file, where, "the metadata lists tensors the file does not hold")
    return _Saved(specs, arrays)


def _entries(raw: bytes, file: FilePath, where: str) -> dict[str, Any]:
    """The nnx metadata from the safetensors header (8-byte length, then JSON)."""
    try:
        size = int.from_bytes(raw[:8], "little")
        if len(raw) < 8 or 8 + size > len(raw):
            raise ValueError("the header is cut short")
        header: dict[str, Any] = json.loads(raw[8 : 8 + size])
        meta: dict[str, str] = header.get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise _damaged(file, where, str(e)) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{where}: {str(file)!r} is a safetensors file but not an nnx checkpoint (no "
            f"{FORMAT!r} metadata); read it with safetensors.numpy.load_file instead."
        )
    entries: dict[str, Any] = json.loads(meta["nnx"])
    return entries


def _damaged(file: FilePath, where: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{where}: {str(file)!r} is truncated or corrupted ({detail}); nothing was restored. "
        "Restore from another checkpoint."
    )


def _host_leaf(saved: _Saved, path: Path) -> Any:
    spec = saved.specs[path]
    array = saved.arrays[path]
    return array if spec.key_impl is None else wrap_key(array, spec.key_impl)


# -- load / restore ----------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> State[Any]:
    """The State stored in a checkpoint file, with its Variable kinds (arrays on the default device)."""
    saved = _read(path, "nnx.checkpoint.load")
    flat: dict[Path, Any] = {}
    for p, spec in saved.specs.items():
        kind = resolve_kind(spec.kind)
        value = place_like(_host_leaf(saved, p), None)
        flat[p] = value if kind is None else kind(value)
    return State.from_flat_state(flat)


def restore(path: str | os.PathLike[str], target: N, /, *filters: Filter) -> N:
    """Restore a checkpoint file into ``target`` and return it.

    ``target`` is a module (concrete, or abstract with ShapeDtypeStruct leaves;
    its cells receive the arrays, placed with each leaf's sharding) or a State
    (a new State is returned). With ``filters``, only the matching leaves are
    restored and the file's other leaves are ignored. If the file does not fit,
    a ``CheckpointMismatchError`` lists every difference and nothing changes.
    """
    where = "nnx.checkpoint.restore"
    wanted = target_state(target, filters, where)
    saved = _read(path, where)
    layout = wanted._layout
    want = {p: spec_of(k, v) for p, k, v in zip(layout.paths, layout.kinds, wanted.leaves)}
    compare(where, select_specs(saved.specs, filters), want)
    values = [place_like(_host_leaf(saved, p), like) for p, like in zip(layout.paths, wanted.leaves)]
    result: N = write_back(target, wanted, values)
    return result
