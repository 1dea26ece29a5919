"""The orbax-checkpoint back end: directories written by ``StandardCheckpointer``.

Orbax saves pytrees of arrays; a State is turned into a nested ``dict`` with
string keys (``to_orbax``), with every typed PRNG key array replaced by its
raw ``uint32`` key data, since orbax cannot write ``key<fry>`` arrays. On
restore the target (a module or a State, concrete or abstract) says what each
leaf must be: its shape, dtype and sharding become the abstract tree orbax
restores onto, so a sharded model is read straight into its shards, and key
data is wrapped back into keys of the target's implementation.

Orbax itself writes atomically (a temporary directory renamed on commit).
Before reading anything, the checkpoint's own metadata is compared with the
target, and a ``CheckpointMismatchError`` lists the differences. Orbax stores
no Variable kinds, so with filters the checkpoint's other leaves are ignored.

``pip install 'nnx[checkpoint]'`` installs orbax-checkpoint.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path as FilePath
from typing import Any, Callable, Sequence, TypeVar

import jax
import numpy as np
from jax.sharding import NamedSharding, SingleDeviceSharding

from nnx.checkpoint.common import (
    CheckpointError,
    LeafSpec,
    compare,
    is_key,
    key_data_spec,
    key_impl_name,
    place_like,
    target_state,
    wrap_key,
    write_back,
)
from nnx.filters import Filter, Path
from nnx.jaxapi import default_device, partition_spec, shape_dtype
from nnx.state import State, path_str

N = TypeVar("N")
OrbaxTree = dict[str, Any]


def _ocp() -> Any:
    try:  # imported by name: orbax ships no type stubs, and every use goes through Any
        return importlib.import_module("orbax.checkpoint")
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "nnx.checkpoint's orbax back end needs the 'orbax-checkpoint' package: "
            "pip install 'nnx[checkpoint]' (or pip install orbax-checkpoint)."
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


# -- comparing with the checkpoint's metadata ---------------------------------------


def _saved_specs(tree: Any, prefix: tuple[str, ...] = ()) -> dict[Path, LeafSpec]:
    out: dict[Path, LeafSpec] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():  # pyright: ignore[reportUnknownVariableType]  # orbax metadata is untyped
            out.update(_saved_specs(v, (*prefix, str(k))))  # pyright: ignore[reportUnknownArgumentType]
    else:
        out[prefix] = LeafSpec("", tuple(tree.shape), np.dtype(tree.dtype).name)
    return out


def _check(where: str, saved_tree: Any, wanted: State[Any], partial: bool) -> None:
    saved: dict[Path, LeafSpec] = dict(_saved_specs(saved_tree))
    want: dict[Path, LeafSpec] = {}
    for path, value in zip(wanted.paths, wanted.leaves):
        if _empty(value):
            continue
        spec = _abstract_leaf(value)
        want[_keys(path)] = LeafSpec("", tuple(spec.shape), np.dtype(spec.dtype).name)
    if partial:
        saved = {p: s for p, s in saved.items() if p in want}
    compare(where, saved, want)


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


def _restore_tree(where: str, restore: Callable[[Any], Any], saved_tree: Any, wanted: State[Any], partial: bool) -> State[Any]:
    _check(where, saved_tree, wanted, partial)
    templates = _nest([(p, _template(v)) for p, v in zip(wanted.paths, wanted.leaves) if not _empty(v)])
    abstract = _full_abstract(saved_tree, templates)
    return from_orbax(restore(abstract), wanted)


# -- one checkpoint directory ---------------------------------------------------------


def save_orbax(directory: str | os.PathLike[str], target: Any, /, *filters: Filter, force: bool = False) -> FilePath:
    """Save a module's state (or a State) into a new orbax directory (``force`` overwrites)."""
    where = "nnx.checkpoint.save_orbax"
    path = FilePath(directory).absolute()
    if path.exists() and not force:
        raise FileExistsError(f"{where}: {str(path)!r} already exists; pass force=True to overwrite it.")
    tree = to_orbax(target_state(target, filters, where))
    checkpointer = _ocp().StandardCheckpointer()
    checkpointer.save(path, tree, force=force)
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
    saved_tree = _metadata_tree(lambda: checkpointer.metadata(path).item_metadata.tree, path, where)

    def read(abstract: Any) -> Any:
        return checkpointer.restore(path, abstract)

    restored = _restore_tree(where, read, saved_tree, wanted, bool(filters))
    result: N = write_back(target, wanted, restored.leaves)
    return result


def _metadata_tree(read: Any, path: FilePath, where: str) -> Any:
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
        tree = to_orbax(target_state(target, filters, "CheckpointManager.save"))
        saved: bool = self.orbax.save(step, args=_ocp().args.StandardSave(tree), force=force)
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
        saved_tree = _metadata_tree(lambda: self.orbax.item_metadata(at).tree, self.directory / str(step), where)
        ocp = _ocp()

        def read(abstract: Any) -> Any:
            return self.orbax.restore(at, args=ocp.args.StandardRestore(abstract))

        restored = _restore_tree(where, read, saved_tree, wanted, bool(filters))
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
