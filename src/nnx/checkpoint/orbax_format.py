"""The orbax-checkpoint back end: directories written by ``StandardCheckpointer``.

Orbax saves pytrees of arrays; a State is turned into a nested ``dict`` with
string keys (``to_orbax``), with every typed PRNG key array replaced by its
raw ``uint32`` key data, since orbax cannot write ``key<fry>`` arrays. On
restore the target (a module or a State, concrete or abstract) says what each
leaf must be: its shape, dtype and sharding become the abstract tree orbax
restores onto, so a sharded model is read straight into its shards, and key
data is wrapped back into keys of the target's implementation.

A directory is written aside and swapped in when complete, one writer at a
time (``nnx.checkpoint.atomic``), so ``save_orbax(path, force=True)`` that
fails or is killed leaves the previous checkpoint whole; the manager's steps
are committed by orbax's own rename. nnx adds, in the checkpoint's custom
metadata, each leaf's Variable kind and a digest of its bytes that every
process computes over the shards it holds (``nnx.checkpoint.digest``), so a
model split across processes is checked too, and restored under any other
split. Before reading
anything, the checkpoint's metadata is compared with the target and a
``CheckpointMismatchError`` lists the differences (kinds included); after
reading, the checksums are verified, so a corrupted chunk is refused rather
than restored. Directories written by
plain orbax (no nnx metadata) restore too, checked by shape and dtype only.

``pip install orbax-checkpoint`` installs it (in an nnx checkout, ``pip install -e '.[checkpoint]'``
installs both back ends).
"""

from __future__ import annotations

import importlib
import os
import re
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Any, Callable, Generator, NamedTuple, Sequence, TypeVar, cast

import jax
import numpy as np
from jax.sharding import NamedSharding, SingleDeviceSharding

from nnx.checkpoint.atomic import claim, claim_on_primary, claim_shared, fsync_tree, remove, swap_in, tidy
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
from nnx.checkpoint.digest import digests
from nnx.filters import Filter, Path
from nnx.jaxapi import default_device, process_index, partition_spec, shape_dtype
from nnx.state import State, path_str

N = TypeVar("N")
OrbaxTree = dict[str, Any]
FORMAT = "nnx.orbax/2"
#: Format 1 (nnx before the digest) recorded a CRC-32 of each leaf's bytes instead; still read.
FORMAT_CRC32 = "nnx.orbax/1"
#: Per saved leaf (string keys): its kind name and the digest (CRC-32 in format 1) of its bytes.
Records = dict[tuple[str, ...], tuple[str, int]]


class Recorded(NamedTuple):
    """What nnx recorded in a checkpoint: per leaf, its kind and check value."""

    leaves: Records
    crc32: bool  # format 1: the check values are CRC-32s of whole arrays
#: Where the manager moves steps beyond ``max_to_keep`` before deleting them.
_PRUNED = ".nnx-pruned"
#: A step directory orbax had not finished writing (it renames it to the step number on commit).
_UNFINISHED_STEP = re.compile(r"[0-9]+\.orbax-checkpoint-tmp.*")


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
    """What orbax restores a target leaf onto: NumPy stays NumPy, and so does a
    64-bit leaf JAX would narrow (an abstract model's NumPy attribute, while
    ``jax_enable_x64`` is off); anything else becomes a ShapeDtypeStruct with the
    leaf's sharding."""
    shape: tuple[int, ...] = tuple(value.shape)
    dtype: Any = value.dtype
    if isinstance(value, np.ndarray) or (
        getattr(value, "sharding", None) is None and not is_key(value) and jax.dtypes.canonicalize_dtype(dtype) != dtype
    ):
        return np.zeros(shape, dtype)
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
    """What nnx adds to a checkpoint: every saved leaf's kind and digest (collective)."""
    leaves: list[list[Any]] = []
    data: list[Any] = []
    for path, kind, value in zip(state.paths, state._layout.kinds, state.leaves):
        if _empty(value):
            continue
        if isinstance(value, jax.ShapeDtypeStruct):
            raise TypeError(f"{where}: '{path_str(path)}' is abstract ({value}); save a model that holds real arrays.")
        leaves.append([list(_keys(path)), kind_name(kind)])
        data.append(jax.random.key_data(value) if is_key(value) else value)
    for leaf, digest in zip(leaves, digests(data)):
        leaf.append(digest)
    return {"nnx": {"format": FORMAT, "leaves": leaves}}


def _records(custom: Any, path: FilePath, where: str) -> Recorded | None:
    """The kinds and checksums of a checkpoint nnx wrote (None for plain orbax ones)."""
    if not isinstance(custom, dict):
        return None
    found: dict[str, Any] = custom  # pyright: ignore[reportUnknownVariableType]  # orbax's JSON metadata
    meta: Any = found.get("nnx")
    if meta is None:
        return None
    problem = _records_problem(meta)
    if problem:
        raise CheckpointError(
            f"{where}: the nnx metadata of {str(path)!r} (custom metadata in _CHECKPOINT_METADATA) "
            f"{problem}: the checkpoint is corrupted; nothing was restored. Restore from another checkpoint."
        )
    leaves: list[tuple[list[str], str, int]] = meta["leaves"]
    return Recorded({tuple(keys): (kind, crc) for keys, kind, crc in leaves}, meta["format"] == FORMAT_CRC32)


def _records_problem(meta: Any) -> str:
    """What is wrong with the form of nnx's custom metadata ('' if nothing)."""
    if not isinstance(meta, dict):
        return "is not a JSON object"
    ours = cast("dict[str, Any]", meta)
    if ours.get("format") not in (FORMAT, FORMAT_CRC32):
        return f"has format {ours.get('format')!r}, not {FORMAT!r}"
    leaves: Any = ours.get("leaves")
    if not isinstance(leaves, list):
        return "has no 'leaves' list"
    for leaf in cast("list[object]", leaves):
        if not (isinstance(leaf, list) and len(cast("list[object]", leaf)) == 3):
            return f"has a leaf record {leaf!r} that is not [path, kind, checksum]"
        keys, kind, crc = cast("list[object]", leaf)
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in cast("list[object]", keys))):
            return f"has a leaf record {leaf!r} whose path is not a list of strings"
        if not isinstance(kind, str) or not isinstance(crc, int) or isinstance(crc, bool):
            return f"has a leaf record {leaf!r} without a kind string and a checksum integer"
    return ""


# -- comparing with the checkpoint's metadata ---------------------------------------


def _saved_specs(tree: Any, records: Recorded | None, prefix: tuple[str, ...] = ()) -> dict[Path, LeafSpec]:
    out: dict[Path, LeafSpec] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():  # pyright: ignore[reportUnknownVariableType]  # orbax metadata is untyped
            out.update(_saved_specs(v, records, (*prefix, str(k))))  # pyright: ignore[reportUnknownArgumentType]
    else:
        kind = records.leaves[prefix][0] if records is not None and prefix in records.leaves else ""
        out[prefix] = LeafSpec(kind, tuple(tree.shape), np.dtype(tree.dtype).name)
    return out


def _check(where: str, saved: dict[Path, LeafSpec], records: Recorded | None, wanted: State[Any], filters: tuple[Filter, ...]) -> None:
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


def _verify(where: str, path: FilePath, restored: OrbaxTree, wanted: State[Any], records: Recorded | None) -> None:
    """Refuse restored arrays whose bytes differ from what was saved (collective: every
    process verifies the same leaves, and all of them refuse together)."""
    if records is None:
        return
    checked: list[tuple[Path, Any, int]] = []
    for leaf_path, value in zip(wanted.paths, wanted.leaves):
        keys = _keys(leaf_path)
        if _empty(value) or keys not in records.leaves:
            continue
        node: Any = restored
        for k in keys:
            node = node[k]
        checked.append((leaf_path, node, records.leaves[keys][1]))
    if records.crc32:
        found = [checksum(_whole(node)) for _, node, _ in checked]
    else:
        found = digests([node for _, node, _ in checked])
    for (leaf_path, _, want), got in zip(checked, found):
        if got != want:
            raise CheckpointError(
                f"{where}: the bytes of '{path_str(leaf_path)}' read from {str(path)!r} fail their "
                "checksum: the checkpoint is corrupted; nothing was restored. Restore from another checkpoint."
            )


def _whole(node: Any) -> np.ndarray[Any, Any]:
    """A restored array whole on the host (format 1's CRC-32 needs every byte in order)."""
    if isinstance(node, jax.Array) and not node.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(node, tiled=True))
    return np.asarray(node)


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
    records = _records(custom, path, where)
    saved: dict[Path, LeafSpec] = _guarded(lambda: _saved_specs(saved_tree, records), path, where)
    _check(where, saved, records, wanted, filters)
    templates = _nest([(p, _template(v)) for p, v in zip(wanted.paths, wanted.leaves) if not _empty(v)])
    abstract = _full_abstract(saved_tree, templates)
    restored: OrbaxTree = _guarded(lambda: read(abstract), path, where)
    _verify(where, path, restored, wanted, records)
    return from_orbax(restored, wanted)


# -- one checkpoint directory ---------------------------------------------------------


def save_orbax(directory: str | os.PathLike[str], target: Any, /, *filters: Filter, force: bool = False) -> FilePath:
    """Save a module's state (or a State) into a new orbax directory (``force`` overwrites).

    The save is written aside and swapped in when complete (``nnx.checkpoint.atomic``):
    if it fails or the process is killed, the directory holds the previous
    checkpoint, whole. A second process saving the same path meanwhile gets a
    ``CheckpointError``.
    """
    where = "nnx.checkpoint.save_orbax"
    path = FilePath(directory).absolute()
    state = target_state(target, filters, where)
    custom = _custom_metadata(state, where)
    tree = to_orbax(state)
    with claim_shared(path, where, overwrite=force) as new:
        with _checkpointer() as checkpointer:
            checkpointer.save(new, tree, custom_metadata=custom)  # every process writes its part
        if process_index() == 0:
            fsync_tree(new)
            swap_in(new, path)
    return path


@contextmanager
def _checkpointer() -> Generator[Any]:
    """orbax's synchronous checkpointer, closed however the block ends.

    Not ``StandardCheckpointer``: that one saves in background threads, and when
    a save fails early (say, a directory it cannot create) the threads that wait
    for it are left waiting for orbax's 300 s coordination timeout, and being
    non-daemon threads, they keep the failed process from exiting that long.
    """
    ocp = _ocp()
    checkpointer = ocp.Checkpointer(ocp.StandardCheckpointHandler())
    try:
        yield checkpointer
    finally:
        checkpointer.close()


def restore_orbax(directory: str | os.PathLike[str], target: N, /, *filters: Filter) -> N:
    """Restore an orbax directory into ``target`` (module or State, concrete or abstract).

    Each leaf is read with the target leaf's sharding. Returns the target
    (updated in place) or, for a State, a new State.
    """
    where = "nnx.checkpoint.restore_orbax"
    path = FilePath(directory).absolute()
    tidy(path)  # leftovers of killed saves go, and a swap a writer left half-done is undone
    if not path.is_dir():
        raise FileNotFoundError(f"{where}: no orbax checkpoint directory at {str(path)!r}.")
    wanted = target_state(target, filters, where)
    with _checkpointer() as checkpointer:
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
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            save_interval_steps=save_interval_steps,
            enable_async_checkpointing=False,  # each save waits anyway; see _checkpointer for why not threads
            # Steps beyond max_to_keep are renamed away (atomic) and then deleted: deleted in
            # place, a kill half-way would leave a step listed whose files are partly gone.
            todelete_subdir=_PRUNED,
        )
        # The handler is named up front: a manager over a directory it did not write
        # itself (a restarted job) must know how to read the steps already there.
        self.orbax: Any = ocp.CheckpointManager(self.directory, options=options, item_handlers=ocp.StandardCheckpointHandler())

    def save(self, step: int, target: Any, /, *filters: Filter, force: bool = False) -> bool:
        """Save ``target``'s state as ``step``; False when the save interval skipped it.

        One process at a time saves into a directory: another one saving there
        meanwhile gets a ``CheckpointError``. A step is written aside and renamed
        into place by orbax, so a killed save leaves the steps before it intact.
        """
        where = "CheckpointManager.save"
        state = target_state(target, filters, where)
        args = _ocp().args.StandardSave(to_orbax(state), custom_metadata=_custom_metadata(state, where))
        with claim_on_primary(self.directory, where) as primary:
            if primary:
                self._remove_unfinished()
            saved: bool = self.orbax.save(step, args=args, force=force)
            self.orbax.wait_until_finished()
            if primary:
                self._remove_unfinished()
        return saved

    def _remove_unfinished(self) -> None:
        """Delete steps that killed saves left half-written, and pruned ones (claim held,
        so no save is at work on them)."""
        if not self.directory.is_dir():
            return
        for entry in self.directory.iterdir():
            if _UNFINISHED_STEP.fullmatch(entry.name) or entry.name == _PRUNED:
                remove(entry)

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
        with claim(self.directory, where, wait_s=0.001) as held:
            if held:  # no save is running: leftovers of killed ones can go
                self._remove_unfinished()
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
