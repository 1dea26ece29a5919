"""The safetensors back end: one file, one tensor per state path.

Tensors are named by their dotted state path (``block.linear.w``). The
file's metadata (``__metadata__`` in the safetensors header) records, per
tensor, the exact path (so the integer index ``0`` and the key ``"0"`` stay
distinct), the Variable kind, the PRNG implementation of key arrays and a
CRC-32 of the bytes, so that a corrupted file is refused instead of restored.
The file is written to a scratch name in the same directory and renamed
into place (``nnx.checkpoint.atomic``), so a crash never leaves a half-written
checkpoint behind, and one process at a time saves a given path.

The ``safetensors`` package is an optional dependency (``pip install 'nnx[checkpoint]'``).
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path as FilePath
from typing import Any, Callable, TypeVar, cast

import jax
import ml_dtypes
import numpy as np

from nnx.checkpoint.atomic import claim, fsync_tree, recover, remove, scratch, swap_in, tidy
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
            "pip install 'nnx[checkpoint]' (or pip install safetensors)."
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
    return atomic_write(FilePath(path).absolute(), lambda tmp: writer(arrays, str(tmp), metadata=metadata), where)


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


def atomic_write(path: FilePath, write: Callable[[FilePath], object], where: str) -> FilePath:
    """Have ``write`` fill a scratch file beside ``path``, flush it to disk, then
    rename it over ``path``: readers see the old file or the new one, never a part.

    The save holds ``path``'s claim (``nnx.checkpoint.atomic``): a second process
    saving the same path meanwhile gets a ``CheckpointError``, and scratch files
    of saves that were killed are removed first."""
    with claim(path, where):
        recover(path)
        tmp = scratch(path, "tmp")
        try:
            write(tmp)
            fsync_tree(tmp)
            swap_in(tmp, path)
        finally:
            remove(tmp)
    return path


# -- read ------------------------------------------------------------------------


class _Saved:
    """A parsed checkpoint file: per path, its spec and array (host data, or a typed key array)."""

    def __init__(self, specs: dict[Path, LeafSpec], arrays: dict[Path, Any]) -> None:
        self.specs = specs
        self.arrays = arrays


def _read(path: str | os.PathLike[str], where: str) -> _Saved:
    file = FilePath(path).absolute()
    tidy(file)  # scratch files of killed saves go now, unless a save is running
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
    arrays: dict[Path, Any] = {}
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
        if leaf_path in specs:
            raise _damaged(file, where, f"two tensors are recorded at the path {path_str(leaf_path)!r}")
        impl = entry.get("key_impl")
        if impl is None:
            specs[leaf_path] = LeafSpec(entry["kind"], tuple(array.shape), dtype.name)
            arrays[leaf_path] = array
        else:
            specs[leaf_path] = LeafSpec(entry["kind"], tuple(entry["key_shape"]), "key", impl)
            arrays[leaf_path] = _key_from(array, entry, name, file, where)
    if len(specs) != len(entries):
        raise _damaged(file, where, "the metadata lists tensors the file does not hold")
    return _Saved(specs, arrays)


def _key_from(data: np.ndarray[Any, Any], entry: dict[str, Any], name: str, file: FilePath, where: str) -> Any:
    """The typed key array stored as raw ``data``; the recorded implementation and shape must fit it."""
    try:
        key = wrap_key(data, entry["key_impl"])
    except Exception as e:  # jax raises ValueError/TypeError/KeyError for an unknown or ill-fitting impl
        raise _damaged(file, where, f"{name!r} does not hold {entry['key_impl']!r} keys ({type(e).__name__}: {e})") from None
    if tuple(key.shape) != tuple(entry["key_shape"]):
        raise _damaged(file, where, f"{name!r} holds keys of shape {tuple(key.shape)}, not {tuple(entry['key_shape'])}")
    return key


def _entries(raw: bytes, file: FilePath, where: str) -> dict[str, dict[str, Any]]:
    """The nnx metadata from the safetensors header (8-byte length, then JSON), checked for form."""
    try:
        size = int.from_bytes(raw[:8], "little")
        if len(raw) < 8 or 8 + size > len(raw):
            raise ValueError("the header is cut short")
        header: Any = json.loads(raw[8 : 8 + size])
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        meta: Any = cast("dict[str, Any]", header).get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("__metadata__ is not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise _damaged(file, where, str(e)) from None
    found = cast("dict[str, Any]", meta)
    if found.get("format") != FORMAT:
        raise CheckpointError(
            f"{where}: {str(file)!r} is a safetensors file but not an nnx checkpoint (no "
            f"{FORMAT!r} metadata); read it with safetensors.numpy.load_file instead."
        )
    try:
        entries: Any = json.loads(found.get("nnx", ""))
    except (TypeError, ValueError) as e:
        raise _damaged(file, where, f"the nnx metadata is not valid JSON ({e})") from None
    problem = _entries_problem(entries)
    if problem:
        raise _damaged(file, where, f"the nnx metadata {problem}")
    checked: dict[str, dict[str, Any]] = entries
    return checked


def _entries_problem(entries: Any) -> str:
    """What is wrong with the form of the nnx metadata ('' if nothing): the reader relies on it."""
    if not isinstance(entries, dict):
        return "is not a JSON object"
    for name, entry in cast("dict[str, Any]", entries).items():
        if not isinstance(entry, dict):
            return f"entry {name!r} is not a JSON object"
        e = cast("dict[str, Any]", entry)
        path: Any = e.get("path")
        if not isinstance(path, list) or not all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in cast("list[object]", path)):
            return f"entry {name!r} has no valid 'path' (a list of names and indices)"
        if not isinstance(e.get("kind"), str):
            return f"entry {name!r} has no 'kind' string"
        crc: Any = e.get("crc32")
        if not isinstance(crc, int) or isinstance(crc, bool):
            return f"entry {name!r} has no 'crc32' integer"
        if "key_impl" in e:
            shape: Any = e.get("key_shape")
            if not isinstance(e["key_impl"], str) or not isinstance(shape, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in cast("list[object]", shape)
            ):
                return f"entry {name!r} has an invalid 'key_impl' or 'key_shape'"
    return ""


def _damaged(file: FilePath, where: str, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{where}: {str(file)!r} is truncated or corrupted ({detail}); nothing was restored. "
        "Restore from another checkpoint."
    )


def _host_leaf(saved: _Saved, path: Path) -> Any:
    return saved.arrays[path]


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
