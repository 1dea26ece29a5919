"""The orbax-checkpoint back end: directories written by ``StandardCheckpointer``.

Orbax saves pytrees of arrays; a State is turned into a nested ``dict`` with
string keys (``to_orbax``), with every typed PRNG key array replaced by its
raw ``uint32`` key data, since orbax cannot write ``key<fry>`` arrays. On
restore the target (a module or a State, concrete or abstract) says what each
leaf must be: its shape, dtype and sharding become the abstract tree orbax
restores onto, so a sharded model is read straight into its shards, and key
data is wrapped back into keys of the target's implementation.

Orbax itself writes atomically (a temporary directory renamed on commit).
nnx adds, in the checkpoint's custom metadata, each leaf's Variable kind and
a CRC-32 of its bytes. Before reading anything, the checkpoint's metadata is
compared with the target and a ``CheckpointMismatchError`` lists the
differences (kinds included); after reading, the checksums are verified, so
a corrupted chunk is refused rather than restored. Directories written by
plain orbax (no nnx metadata) restore too, checked by shape and dtype only.

``pip install orbax-checkpoint`` installs it (in an nnx checkout, ``pip install -e '.[checkpoint]'``
installs both back ends).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path as FilePath
from typing import Any, Callable, Sequence, TypeVar, cast

import jax
import numpy as np
from jax.sharding import NamedSharding, SingleDeviceSharding

from nnx.checkpoint.common import (
    CheckpointError,
    LeafSpec,
    checksum,
    compare,
    is_key,
    key_data_spec,
    key_impl_name,
    kind_name,
    place_like,
    select_specs,
    target_state,
    wrap_key,
    write_back,
)
from nnx.filters import Filter, Path
from nnx.jaxapi import default_device, partition_spec, shape_dtype
from nnx.state import State, path_str

N = TypeVar("N")
OrbaxTree = dict[str, Any]
FORMAT = "nnx.orbax/1"
#: Per saved leaf (string keys): its kind name and the CRC-32 of its bytes.
Records = dict[tuple[str, ...], tuple[str, int]]


def _ocp() -> Any:
    try:  # imported by name: orbax ships no type stubs, and every use goes through Any
        return importlib.import_module("orbax.checkpoint")
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "nnx.checkpoint's orbax back end needs the 'orbax-checkpoint' package: "
            "pip install orbax-checkpoint (or, in an nnx checkout, pip install -e '.[checkpoint]', "
            "which installs both back ends)."
        ) from None


# -- State <-> orbax tree ----------------------------------------------------------


def _keys(path: Path) -> tuple[str, ...]:
    return tuple(str(k) for k in path)


def _nest(items: Sequence[tuple[Path, Any]]) -> OrbaxTree:
    tree: OrbaxTree = {}
    seen: dict[tuple[str, ...], Path] = {}
    for path, value in items:
        keys = _keys(path)
        if keys in seen:
            raise ValueError(
                f"'{path_str(seen[keys])}' and '{path_str(path)}' have the same name in an orbax "
                "checkpoint (integer and string keys both become strings); rename one."
            )
        seen[keys] = path
        node = tree
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return tree


def _abstract_leaf(value: Any) -> jax.ShapeDtypeStruct:
    """What orbax should restore for a target leaf: shape, dtype and a sharding (always one)."""
    sharding = getattr(value, "sharding", None) or SingleDeviceSharding(default_device())
    if is_key(value):
        data = key_data_spec(value)
        if isinstance(sharding, NamedSharding):  # the key data has extra trailing axes
            extra = len(data.shape) - len(value.shape)
            sharding = NamedSharding(sharding.mesh, partition_spec(*sharding.spec, *([None] * extra)))
        return shape_dtype(tuple(data.shape), data.dtype, sharding)
    return shape_dtype(tuple(value.shape), value.dtype, sharding)


def _empty(value: Any) -> bool:
    """Zero-size leaves hold no data; orbax refuses them, so they are left out and rebuilt."""
    shape: tuple[int, ...] = tuple(value.shape)
    return int(np.prod(shape)) == 0


def _template(value: Any) -> Any:
    """What orbax restores a target leaf onto: NumPy stays NumPy (64-bit dtypes
    included); anything else becomes a ShapeDtypeStruct with the leaf's sharding."""
    if isinstance(value, np.ndarray):
        array: np.ndarray[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to ndarray[Unknown]
        return np.zeros(array.shape, array.dtype)
    return _abstract_leaf(value)


def to_orbax(state: State[Any]) -> OrbaxTree:
    """A nested dict orbax can save (or restore onto): keys as key data, abstract leaves
    as ShapeDtypeStructs that always carry a sharding, zero-size leaves left out."""
    leaves: list[tuple[Path, Any]] = []
    for path, value in zip(state.paths, state.leaves):
        if _empty(value):
            continue
        if isinstance(value, jax.ShapeDtypeStruct):
            leaves.append((path, _abstract_leaf(value)))
        elif is_key(value):
            leaves.append((path, jax.random.key_data(value)))
        else:
            leaves.append((path, value))
    return _nest(leaves)


def from_orbax(tree: OrbaxTree, like: State[N]) -> State[N]:
    """The State of ``like``'s structure holding the arrays of a restored orbax ``tree``."""
    values: list[Any] = []
    for path, want in zip(like.paths, like.leaves):
        if _empty(want):
            values.append(place_like(np.zeros(want.shape, want.dtype), want))
            continue
        node: Any = tree
        for k in _keys(path):
            node = node[k]
        values.append(wrap_key(node, key_impl_name(want)) if is_key(want) else node)
    return State._make(like._layout, values)


# -- kinds and checksums in the custom metadata --------------------------------------


def _custom_metadata(state: State[Any], where: str) -> dict[str, Any]:
    """What nnx adds to a checkpoint: every saved leaf's kind and checksum."""
    leaves: list[list[Any]] = []
    for path, kind, value in zip(state.paths, state._layout.kinds, state.leaves):
        if _empty(value):
            continue
        if isinstance(value, jax.ShapeDtypeStruct):
            raise TypeError(f"{where}: '{path_str(path)}' is abstract ({value}); save a model that holds real arrays.")
        data = jax.random.key_data(value) if is_key(value) else value
        leaves.append([list(_keys(path)), kind_name(kind), checksum(np.asarray(data))])
    return {"nnx": {"format": FORMAT, "leaves": leaves}}


def _records(custom: Any) -> Records | None:
    """The kinds and checksums of a checkpoint nnx wrote (None for plain orbax ones)."""
    if not isinstance(custom, dict):
        return None
    found: dict[str, Any] = custom  # pyright: ignore[reportUnknownVariableType]  # orbax's JSON metadata
    meta: Any = found.get("nnx")
    if not isinstance(meta, dict):
        return None
    ours = cast("dict[str, Any]", meta)
    if ours.get("format") != FORMAT:
        return None
    leaves: list[tuple[list[str], str, int]] = ours["leaves"]
    return {tuple(keys): (kind, crc) for keys, kind, crc in leaves}


# -- comparing with the checkpoint's metadata ---------------------------------------


def _saved_specs(tree: Any, records: Records | None, prefix: tuple[str, ...] = ()) -> dict[Path, LeafSpec]:
    out: dict[Path, LeafSpec] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():  # pyright: ignore[reportUnknownVariableType]  # orbax metadata is untyped
            out.update(_saved_specs(v, records, (*prefix, str(k))))  # pyright: ignore[reportUnknownArgumentType]
    else:
        kind = records[prefix][0] if records is not None and prefix in records else ""
        out[prefix] = LeafSpec(kind, tuple(tree.shape), np.dtype(tree.dtype).name)
    return out


def _check(where: str, saved_tree: Any, records: Records | None, wanted: State[Any], filters: tuple[Filter, ...]) -> None:
    saved = _saved_specs(saved_tree, records)
    want: dict[Path, LeafSpec] = {}
    for path, kind, value in zip(wanted.paths, wanted._layout.kinds, wanted.leaves):
        if _empty(value):
            continue
        spec = _abstract_leaf(value)
        name = kind_name(kind) if records is not None else ""  # plain orbax checkpoints record no kinds
        want[_keys(path)] = LeafSpec(name, tuple(spec.shape), np.dtype(spec.dtype).name)
    if filters:
        saved = select_specs(saved, filters) if records is not None else {p: s for p, s in saved.items() if p in want}
    compare(where, saved, want)


def _verify(where: str, path: FilePath, restored: OrbaxTree, wanted: State[Any], records: Records | None) -> None:
    """Refuse restored arrays whose bytes differ from what was saved."""
    if records is None:
        return
    for leaf_path, value in zip(wanted.paths, wanted.leaves):
        keys = _keys(leaf_path)
        if _empty(value) or keys not in records:
            continue
        node: Any = restored
        for k in keys:
            node = node[k]
        if checksum(np.asarray(node)) != records[keys][1]:
            raise CheckpointError(
                f"{where}: the bytes of '{path_str(leaf_path)}' read from {str(path)!r} fail their "
                "checksum: the checkpoint is corrupted; nothing was restored. Restore from another checkpoint."
            )


def _full_abstract(saved_tree: Any, wanted: Any) -> Any:
    """The abstract tree of everything saved: the target's templates where it has them."""
    if isinstance(saved_tree, dict):
        out: dict[str, Any] = {
            k: _full_abstract(v, wanted.get(k, {}) if isinstance(wanted, dict) else {})  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
            for k, v in saved_tree.items()  # pyright: ignore[reportUnknownVariableType]
        }
        return out
    if not isinstance(wanted, dict):  # a template from the target
        return wanted
    return shape_dtype(tuple(saved_tree.shape), saved_tree.dtype, SingleDeviceSharding(default_device()))


def _restore_tree(
    where: str,
    path: FilePath,
    read: Callable[[Any], Any],
    metadata: tuple[Any, Any],
    wanted: State[Any],
    filters: tuple[Filter, ...],
) -> State[Any]:
    """Check the saved tree against the target, read it onto the target's templates, verify it."""
    saved_tree, custom = metadata
    records = _records(custom)
    _check(where, saved_tree, records, wanted, filters)
    templates = _nest([(p, _template(v)) for p, v in zip(wanted.paths, wanted.leaves) if not _empty(v)])
    abstract = _full_abstract(saved_tree, templates)
    restored: OrbaxTree = _guarded(lambda: read(abstract), path, where)
    _verify(where, path, restored, wanted, records)
    return from_orbax(restored, wanted)


# -- one checkpoint directory ---------------------------------------------------------


def save_orbax(directory: str | os.PathLike[str], target: Any, /, *filters: Filter, force: bool = False) -> FilePath:
    """Save a module's state (or a State) into a new orbax directory (``force`` overwrites)."""
    where = "nnx.checkpoint.save_orbax"
    path = FilePath(directory).absolute()
    if path.exists() and not force:
        raise FileExistsError(f"{where}: {str(path)!r} already exists; pass force=True to overwrite it.")
    state = target_state(target, filters, where)
    custom = _custom_metadata(state, where)
    checkpointer = _ocp().StandardCheckpointer()
    checkpointer.save(path, to_orbax(state), force=force, custom_metadata=custom)
    checkpointer.wait_until_finished()
    return path


def restore_orbax(directory: str | os.PathLike[str], target: N, /, *filters: Filter) -> N:
    """Restore an orbax directory into ``target`` (module or State, concrete or abstract).

    Each leaf is read with the target leaf's sharding. Returns the target
    (updated in place) or, for a State, a new State.
    """
    where = "nnx.checkpoint.restore_orbax"
    path = FilePath(directory).absolute()
    if not path.is_dir():
        raise FileNotFoundError(f"{where}: no orbax checkpoint directory at {str(path)!r}.")
    wanted = target_state(target, filters, where)
    checkpointer = _ocp().StandardCheckpointer()
    step_metadata = _guarded(lambda: checkpointer.metadata(path), path, where)
    metadata = _guarded(lambda: (step_metadata.item_metadata.tree, step_metadata.custom_metadata), path, where)

    def read(abstract: Any) -> Any:
        return checkpointer.restore(path, abstract)

    restored = _restore_tree(where, path, read, metadata, wanted, filters)
    result: N = write_back(target, wanted, restored.leaves)
    return result


def _guarded(read: Callable[[], Any], path: FilePath, where: str) -> Any:
    """``read()``, with orbax's failures on a damaged directory turned into a CheckpointError."""
    try:
        return read()
    except Exception as e:  # orbax raises many types for damaged directories
        raise CheckpointError(
            f"{where}: cannot read the orbax checkpoint at {str(path)!r} ({type(e).__name__}: {e}); "
            "it is incomplete or corrupted. Restore from another checkpoint."
        ) from None


# -- many steps -----------------------------------------------------------------------


class CheckpointManager:
    """Numbered checkpoints in one directory, keeping the last ``max_to_keep``.

    ``manager.save(step, model)`` and ``manager.restore(model)`` (the latest
    step, or ``step=``). A thin layer over ``orbax.checkpoint.CheckpointManager``
    (available as ``manager.orbax``) that adds key handling, shardings from the
    target and the mismatch check.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, max_to_keep: int | None = None, save_interval_steps: int = 1
    ) -> None:
        ocp = _ocp()
        self.directory = FilePath(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, save_interval_steps=save_interval_steps)
        self.orbax: Any = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, target: Any, /, *filters: Filter, force: bool = False) -> bool:
        """Save ``target``'s state as ``step``; False when the save interval skipped it."""
        where = "CheckpointManager.save"
        state = target_state(target, filters, where)
        args = _ocp().args.StandardSave(to_orbax(state), custom_metadata=_custom_metadata(state, where))
        saved: bool = self.orbax.save(step, args=args, force=force)
        self.orbax.wait_until_finished()
        return saved

    def restore(self, target: N, /, *filters: Filter, step: int | None = None) -> N:
        """Restore step ``step`` (default: the latest) into ``target``; returns the target."""
        where = "CheckpointManager.restore"
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(f"{where}: {str(self.directory)!r} holds no checkpoints yet.")
        elif step not in self.all_steps():
            raise FileNotFoundError(f"{where}: no step {step} in {str(self.directory)!r}; steps: {self.all_steps()}.")
        wanted = target_state(target, filters, where)
        at = step
        step_dir = self.directory / str(step)
        item = _guarded(lambda: self.orbax.item_metadata(at), step_dir, where)
        metadata = _guarded(lambda: (item.tree, item.custom_metadata), step_dir, where)
        ocp = _ocp()

        def read(abstract: Any) -> Any:
            return self.orbax.restore(at, args=ocp.args.StandardRestore(abstract))

        restored = _restore_tree(where, step_dir, read, metadata, wanted, filters)
        result: N = write_back(target, wanted, restored.leaves)
        return result

    def latest_step(self) -> int | None:
        """The newest step saved, or None."""
        step: int | None = self.orbax.latest_step()
        return step

    def all_steps(self) -> list[int]:
        """Every step still on disk, ascending."""
        return sorted(self.orbax.all_steps())

    def wait_until_finished(self) -> None:
        """Block until pending saves are committed."""
        self.orbax.wait_until_finished()

    def close(self) -> None:
        """Finish pending work and release orbax's resources."""
        self.orbax.close()

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
