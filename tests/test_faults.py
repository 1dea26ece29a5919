"""Checkpoint writers under faults, in real processes: ``kill -9`` at random moments,
two writers of one path at once, a save that fails, a job restarted over its run.

Every kill is followed by a restore that must give the last complete checkpoint
exactly (or the one being written, when the kill came after its commit), and
must leave no scratch behind. The children come from a fork server that has
imported nnx and orbax already (``fault_writer``), so each starts in about a
second; every wait is bounded, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fault_writer
from fault_writer import BACKENDS, Small, index_of, restore
from nnx.checkpoint.atomic import scratch_entries

import nnx

KILLS = 10
START_S = 120.0  # a child's first save, fork server start-up included, on a slow shared machine
JOIN_S = 60.0


@pytest.fixture(scope="module")
def ctx() -> Iterator[ForkServerContext]:
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["nnx", "orbax.checkpoint", "safetensors.numpy", "fault_writer"])
    yield context


def same(a: Small, b: Small) -> bool:
    sa, sb = nnx.state(a), nnx.state(b)
    if sa.paths != sb.paths:
        return False
    return all(np.array_equal(_host(x), _host(y)) and x.dtype == y.dtype for x, y in zip(sa.leaves, sb.leaves))


def _host(value: Any) -> np.ndarray[Any, Any]:
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(value))
    return np.asarray(value)


def _leftovers(backend: str, path: Path) -> list[str]:
    if backend == "manager":
        return [p.name for p in path.iterdir() if ".orbax-checkpoint-tmp" in p.name or p.name == ".nnx-pruned"] if path.is_dir() else []
    return [p.name for p in scratch_entries(path)]


def _stop(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join(JOIN_S)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_at_random_moments_never_loses_the_last_checkpoint(ctx: ForkServerContext, tmp_path: Path, backend: str) -> None:
    path = tmp_path / ("m.safetensors" if backend == "safetensors" else "ckpt")
    rng = random.Random(f"kill-{backend}")
    last = ctx.Value("q", -1)
    start, mid_save = 0, 0
    for _ in range(KILLS):
        child = ctx.Process(target=fault_writer.keep_saving, args=(backend, str(path), start, last), daemon=True)
        child.start()
        try:
            deadline = time.monotonic() + START_S
            while last.value < start:  # the child's first save: the kill comes after it, during later ones
                assert child.is_alive() and time.monotonic() < deadline, f"writer did not start (exit {child.exitcode})"
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.25))
            assert child.pid is not None
            os.kill(child.pid, signal.SIGKILL)
        finally:
            _stop(child)
        done = last.value
        mid_save += bool(_leftovers(backend, path))
        restored = restore(backend, path)
        got = index_of(restored)
        # The save in flight may have committed just before the kill, before it could say so.
        assert got in (done, done + 1), (got, done)
        assert same(restored, Small(got)), got
        assert _leftovers(backend, path) == [], "a restore cleans up after killed saves"
        if backend == "manager":  # the restarted job restores every step it kept
            with nnx.checkpoint.CheckpointManager(path, max_to_keep=2) as manager:
                steps = manager.all_steps()
            assert steps[-1] == got and len(steps) <= 3, steps  # 3: a kill between a commit and its pruning
            for step in steps:
                assert same(restore(backend, path, step), Small(step)), step
        start = got + 2  # fresh indices: each child's models differ from all saved before
    print(f"{backend}: {KILLS} kills, {mid_save} left scratch behind (killed mid-save)")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_writers_of_one_path_one_wins_whole_the_other_is_refused(ctx: ForkServerContext, tmp_path: Path, backend: str) -> None:
    path = tmp_path / ("m.safetensors" if backend == "safetensors" else "ckpt")
    go = ctx.Event()
    saved: Any = ctx.Queue()
    count = 6
    writers = [
        ctx.Process(target=fault_writer.save_many, args=(backend, str(path), first, count, go, saved), daemon=True)
        for first in (100, 200)
    ]
    for w in writers:
        w.start()
    go.set()
    results: list[int] = []
    try:
        for _ in range(2 * count):
            results.append(saved.get(timeout=START_S))  # nobody hangs
        for w in writers:
            w.join(JOIN_S)
            assert w.exitcode == 0, "a writer failed with something other than a CheckpointError"
    finally:
        for w in writers:
            _stop(w)
    won = [i for i in results if i >= 0]
    assert won, "every save was refused"
    restored = restore(backend, path)
    assert index_of(restored) in won and same(restored, Small(index_of(restored)))
    assert _leftovers(backend, path) == []


def test_a_failed_forced_save_exits_promptly_and_keeps_the_old_checkpoint(ctx: ForkServerContext, tmp_path: Path) -> None:
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Small(0))
    child = ctx.Process(target=fault_writer.fail_a_forced_save, args=(str(path),), daemon=False)
    child.start()
    # orbax's background threads used to wait 300 s for a signal that never came, holding the exit.
    child.join(JOIN_S)
    alive = child.is_alive()
    _stop(child)
    assert not alive and child.exitcode == 0
    assert same(restore("orbax", path), Small(0))
