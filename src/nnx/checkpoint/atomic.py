"""Crash-safe writes of one checkpoint path: one writer at a time, written aside, then swapped in.

Every save of a checkpoint ``dir/name`` (a safetensors file or an orbax
directory) follows the same steps:

1. **Claim** the path: an exclusive ``flock`` on the lock file ``dir/.name.nnx-lock``.
   The kernel drops the lock when its process dies (even by ``kill -9``), so a
   crashed writer never blocks the next one. A second process that tries to save
   the same path while the first is still writing gets a ``CheckpointError`` at
   once, rather than waiting or mixing its files with the first one's.
2. **Clean up** after writers that died: every scratch entry of this path
   (``dir/.name.nnx-new-*``, ``-old-*``, ``-tmp-*``) is left over from a killed
   save, since only the holder of the claim makes them. If a writer died
   half-way through a swap (below), its previous checkpoint is put back first.
3. **Write aside** into a fresh scratch entry, and flush it to disk.
4. **Swap**: a file is renamed over the old one (atomic). A directory cannot be
   renamed over a non-empty one, so the old directory is first renamed to an
   ``-old-`` scratch name and the new one renamed into place; a reader that
   finds the path missing in between takes the claim, which puts the old one
   back if its writer died (``recover``), or waits the moment the swap takes.

The old checkpoint therefore stays restorable until the new one is complete,
whatever stops the save (a kill, a full disk, a ``PermissionError``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Generator

from nnx.checkpoint.common import CheckpointError

#: How long a reader waits for a writer that is in the middle of swapping directories.
SWAP_WAIT_S = 10.0


def lock_file(path: FilePath) -> FilePath:
    """The lock file that guards ``path``: ``.name.nnx-lock`` beside it."""
    return path.with_name(f".{path.name}.nnx-lock")


def scratch(path: FilePath, role: str) -> FilePath:
    """A fresh scratch name beside ``path`` for role ``new``, ``old`` or ``tmp``."""
    return path.with_name(f".{path.name}.nnx-{role}-{secrets.token_hex(8)}")


def _scratch_pattern(path: FilePath) -> re.Pattern[str]:
    # orbax writes a directory ``X`` as ``X.orbax-checkpoint-tmp-<n>`` first: those are ours too.
    return re.compile(re.escape(f".{path.name}.nnx-") + r"(new|old|tmp)-[0-9a-f]{16}(\.orbax-checkpoint-tmp.*)?")


def scratch_entries(path: FilePath) -> list[FilePath]:
    """Every scratch entry of ``path`` in its directory (oldest first)."""
    pattern = _scratch_pattern(path)
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    found = [path.parent / n for n in names if pattern.fullmatch(n)]
    return sorted(found, key=_mtime)


def _mtime(p: FilePath) -> float:
    try:
        return p.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


@contextmanager
def claim(path: FilePath, where: str, *, wait_s: float = 0.0) -> Generator[bool]:
    """Hold the exclusive right to write ``path`` for the ``with`` block.

    With ``wait_s == 0`` (writers) a path another process holds raises a
    ``CheckpointError``; with ``wait_s > 0`` (readers that must recover) the
    claim is retried that long and the block gets ``False`` if it never came.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = _try_lock(lock_file(path))
        except PermissionError:
            if wait_s > 0:  # a reader in a directory it may not write: nothing to tidy there
                yield False
                return
            raise
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            if wait_s > 0:
                yield False
                return
            raise CheckpointError(
                f"{where}: another process is saving {str(path)!r} right now (it holds "
                f"{str(lock_file(path))!r}); nothing was written. Save to another path, or "
                "save again once that process has finished."
            )
        time.sleep(0.01)
    try:
        yield True
    finally:
        # Unlink while still holding the lock: a process that opened the old file
        # sees, once it gets the lock, that it no longer is the lock file (_try_lock).
        try:
            os.unlink(lock_file(path))
        except FileNotFoundError:  # pragma: no cover - only if someone removed it by hand
            pass
        os.close(fd)


def _try_lock(file: FilePath) -> int | None:
    """An open, exclusively locked descriptor of ``file``, or None when another process holds it."""
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    try:
        same = os.fstat(fd).st_ino == os.stat(file).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # the holder unlinked it on release: lock the file now at that name
        os.close(fd)
        return _try_lock(file)
    return fd


def recover(path: FilePath) -> None:
    """With the claim held: put back a checkpoint a dead writer moved aside, and
    remove every scratch entry of ``path`` (they all belong to dead writers)."""
    entries = scratch_entries(path)
    if not path.exists():
        old = [p for p in entries if p.name.startswith(f".{path.name}.nnx-old-") and p.is_dir()]
        if old:
            os.replace(old[-1], path)
            _fsync_dir(path.parent)
            entries = scratch_entries(path)
    for entry in entries:
        remove(entry)


def remove(entry: FilePath) -> None:
    """Delete a file or directory tree, if it is there."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        try:
            entry.unlink()
        except FileNotFoundError:
            pass


def tidy(path: FilePath) -> None:
    """Before a read: recover and clean ``path`` if no writer is at work on it.

    A missing ``path`` with an ``-old-`` entry beside it means a swap is in
    progress or was cut short: then wait (briefly) for the claim, so the reader
    sees the old checkpoint put back or the new one in place.
    """
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        return  # nothing to clean, or a read-only copy: read what is there
    swapping = not path.exists() and any(p.name.startswith(f".{path.name}.nnx-old-") for p in scratch_entries(path))
    if not swapping and not scratch_entries(path):
        return
    with claim(path, "nnx.checkpoint", wait_s=SWAP_WAIT_S if swapping else 0.001) as held:
        if held:
            recover(path)


def swap_in(new: FilePath, path: FilePath) -> None:
    """Move the complete checkpoint ``new`` to ``path`` (claim held), replacing what was there."""
    if new.is_dir() and path.exists():
        old = scratch(path, "old")
        os.replace(path, old)
        os.replace(new, path)
        _fsync_dir(path.parent)
        remove(old)
    else:
        os.replace(new, path)
    _fsync_dir(path.parent)


def fsync_tree(root: FilePath) -> None:
    """Flush every file (and directory) under ``root`` to disk."""
    if root.is_file():
        _fsync_path(root, os.O_RDONLY)
        return
    for here, _, files in os.walk(root):
        for name in files:
            _fsync_path(FilePath(here) / name, os.O_RDONLY)
        _fsync_dir(FilePath(here))


def _fsync_dir(directory: FilePath) -> None:
    _fsync_path(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync_path(p: FilePath, flags: int) -> None:
    fd = os.open(p, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
