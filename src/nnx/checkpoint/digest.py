"""A checksum of an array that each process computes over its own shards.

The orbax back end records a checksum of every saved leaf and verifies it after
a restore. A leaf split across processes (tensor parallelism over
``jax.distributed``) is never whole in any one process, and the restore may
split it differently (another mesh, another process count), so the checksum
must not depend on how the array is cut. A CRC of the bytes in order does; this
digest does not:

    digest(A) = sum over every word w at position i of mix(i, w)   (mod 2**64)

where the words are the array's bytes in C order, read as unsigned integers of
the widest size (8, 4, 2 or 1 bytes) that divides the item size, ``i`` is the
word's position in the whole array, and ``mix`` is a 64-bit integer hash that
is one-to-one in the word for each ``i``. A sum
can be taken in any order and in parts: each process adds up the words of the
shards it holds (one copy of each: ``replica_id == 0``), and the processes'
partial sums are added together (``combine``). Changing, swapping or moving any
word changes the digest, except with chance about 2**-64.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from nnx.jaxapi import process_count, process_index

_MASK = (1 << 64) - 1
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
#: Words hashed at once: bounds the temporary arrays (8 bytes per word, a few of them).
_CHUNK_WORDS = 1 << 16  # 512 KiB per temporary: they stay in cache

Index = tuple[slice, ...]


def _word_size(itemsize: int) -> int:
    return next(w for w in (8, 4, 2, 1) if itemsize % w == 0)


def block_digest(block: np.ndarray[Any, Any], index: Index, shape: tuple[int, ...]) -> int:
    """The digest's terms for ``block``, the part ``index`` of an array of ``shape``."""
    starts = [s.indices(n)[0] for s, n in zip(index, shape)]
    size = _word_size(block.dtype.itemsize)
    per = block.dtype.itemsize // size
    # strides of the whole array, counted in words
    strides = [per * int(np.prod(shape[a + 1 :], dtype=np.int64)) for a in range(len(shape))]
    words = np.ascontiguousarray(block).reshape(-1).view(f"u{size}").reshape(*block.shape, per)
    if block.ndim == 0:
        return _sum_mixed(_positions((per,), [], [], per), words)
    rows = block.shape[0]
    step = max(1, _CHUNK_WORDS // max(1, words[:1].size))
    total = 0
    for r0 in range(0, rows, step):
        part = words[r0 : r0 + step]
        total += _sum_mixed(_positions(part.shape, [starts[0] + r0, *starts[1:]], strides, per), part)
    return total & _MASK


def _positions(shape: tuple[int, ...], starts: Sequence[int], strides: Sequence[int], per: int) -> np.ndarray[Any, Any]:
    """Each word's key, ``(position + 1) * K1`` (``shape`` ends with the words per item).

    Built from one small vector per axis: only the last addition is full size.
    """
    key = (np.arange(per, dtype=np.uint64) + np.uint64(1)) * _K1
    for axis in range(len(shape) - 2, -1, -1):
        coords = (np.arange(shape[axis], dtype=np.uint64) + np.uint64(starts[axis])) * np.uint64(strides[axis]) * _K1
        key = coords.reshape(-1, *([1] * (len(shape) - 1 - axis))) + key
    return key


def _sum_mixed(keys: np.ndarray[Any, Any], words: np.ndarray[Any, Any]) -> int:
    # x = mix(word ^ key): a xor, an odd multiply and a xor-shift, each a bijection of the
    # word, so changing one word always changes its term. uint64 arithmetic wraps, as meant.
    x = words.astype(np.uint64)
    x ^= keys
    x *= _K2
    x ^= x >> np.uint64(31)
    return int(np.sum(x, dtype=np.uint64))


def local_digest(value: Any) -> int:
    """This process's part of ``value``'s digest (an array of any kind; keys as key data).

    A ``jax.Array`` adds its addressable shards, one copy of each. A value every
    process holds whole (NumPy, or an array on this process's devices only)
    counts on process 0 alone, so that ``combine`` counts it once.
    """
    if isinstance(value, jax.Array) and (process_count() == 1 or not value.is_fully_addressable):
        shape: tuple[int, ...] = tuple(value.shape)
        total = 0
        for shard in value.addressable_shards:
            if shard.replica_id == 0:
                total += block_digest(np.asarray(shard.data), tuple(shard.index), shape)
        return total & _MASK
    if process_count() > 1 and process_index() != 0:
        return 0
    host = np.asarray(value)
    return block_digest(host, tuple(slice(None) for _ in host.shape), tuple(host.shape))


def combine(partials: Sequence[int]) -> list[int]:
    """The digests of whole arrays from each process's ``local_digest`` of them (collective).

    Every process must call this with its partial sums of the same leaves in
    the same order; all get the same totals.
    """
    if process_count() == 1:
        return [p & _MASK for p in partials]
    from jax.experimental import multihost_utils

    # 32-bit halves: 64-bit integers do not cross a device boundary with jax_enable_x64 off.
    halves = np.zeros((len(partials) + 1, 2), np.uint32)  # one spare row: never an empty array
    for i, p in enumerate(partials):
        halves[i] = (p & 0xFFFFFFFF, (p >> 32) & 0xFFFFFFFF)
    gathered = np.asarray(multihost_utils.process_allgather(halves), dtype=np.uint64)  # (processes, n + 1, 2)
    return [int(sum(int(lo) | (int(hi) << 32) for lo, hi in gathered[:, i])) & _MASK for i in range(len(partials))]


def digests(values: Sequence[Any]) -> list[int]:
    """The digest of each of ``values`` (collective across processes: every one calls it alike)."""
    return combine([local_digest(v) for v in values])
