"""What the child processes of ``test_faults.py`` run: checkpoint writers that are
killed, collide or fail. A module of its own so the fork server can import it
(and nnx, orbax) once, and each child starts without paying for the imports."""

from __future__ import annotations

from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

import nnx
from nnx.checkpoint import CheckpointError

BACKENDS = ("safetensors", "orbax", "manager")


class Small(nnx.Module):
    """A model whose every leaf says which save ``i`` it belongs to (about 1 MB)."""

    def __init__(self, i: int) -> None:
        self.w = nnx.Param(jnp.full((256, 1024), i, dtype=jnp.float32))
        self.b = nnx.Param(jnp.arange(16, dtype=jnp.float32) + i)
        self.table = np.full((3,), i, dtype=np.float64)
        self.rngs = nnx.Rngs(i)


def index_of(model: Small) -> int:
    """Which save a restored model came from."""
    return int(np.asarray(model.b.value)[0])


class Writer:
    """Saves model ``i`` with one of the back ends, to one path (a file, a directory, a run)."""

    def __init__(self, backend: str, path: Path) -> None:
        self.backend = backend
        self.path = path
        self.manager = nnx.checkpoint.CheckpointManager(path, max_to_keep=2) if backend == "manager" else None

    def save(self, i: int) -> None:
        model = Small(i)
        if self.manager is not None:
            self.manager.save(i, model)
        elif self.backend == "safetensors":
            nnx.checkpoint.save(self.path, model)
        else:
            nnx.checkpoint.save_orbax(self.path, model, force=True)


def restore(backend: str, path: Path, step: int | None = None) -> Small:
    """The latest checkpoint (or ``step`` of a run) restored into a fresh model."""
    target = Small(-1)
    if backend == "safetensors":
        return nnx.checkpoint.restore(path, target)
    if backend == "orbax":
        return nnx.checkpoint.restore_orbax(path, target)
    with nnx.checkpoint.CheckpointManager(path, max_to_keep=2) as manager:  # a restarted job's manager
        return manager.restore(target, step=step)


def keep_saving(backend: str, path: str, start: int, last: Synchronized[int]) -> None:
    """Save models ``start``, ``start + 1``, ... until killed; ``last`` is the last one saved."""
    writer = Writer(backend, Path(path))
    i = start
    while True:
        writer.save(i)
        last.value = i
        i += 1


def save_many(backend: str, path: str, first: int, count: int, go: Event, saved: Any) -> None:
    """Once ``go`` is set, save models ``first .. first + count - 1``, putting into the
    queue ``saved`` each index whose save went through and ``-1`` for each refused one."""
    writer = Writer(backend, Path(path))
    go.wait(60)
    for i in range(first, first + count):
        try:
            writer.save(i)
            saved.put(i)
        except CheckpointError as e:
            assert "another process is saving" in str(e), e
            saved.put(-1)


def fail_a_forced_save(path: str) -> None:
    """``save_orbax(force=True)`` over ``path`` failing as in a read-only directory; then return."""
    from orbax.checkpoint._src.path import async_path  # pyright: ignore[reportMissingTypeStubs]

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("[Errno 13] Permission denied (injected)")

    async_path.mkdir = refused
    try:
        nnx.checkpoint.save_orbax(path, Small(1), force=True)
    except PermissionError:
        return
    raise AssertionError("the injected failure did not happen")
