"""examples/multiprocess_training.py as 2 processes on 127.0.0.1 against 1 process.

Every run is a subprocess with a hard time limit (killed when it runs over), on
a free loopback port, so no test can hang. The 2-process run (2 CPU devices per
process, gloo collectives) must give the losses of the 1-process run on 4
devices, step for step, in both the data-parallel and the data + tensor-parallel
part; its orbax checkpoints, the tensor-parallel one included (its hidden kernel
is split across the processes, so no process ever holds it whole), restore in
the same 2 processes and in 1 process, which continues exactly like the
uninterrupted run; a process left alone stops with a clear error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SCRIPT = Path(__file__).parent.parent / "examples" / "multiprocess_training.py"
STEPS = 4
LIMIT = 420  # seconds per run: generous for a loaded CI machine; a hang is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--json", "--steps", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str], limit: float = LIMIT) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"a run took over {limit} s and was killed:\n{err[-3000:]}") from None
    return proc.returncode, out, err


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    code, out, err = finish(proc)
    assert code == 0, f"exit code {code}:\n{err[-3000:]}"
    parsed: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return parsed


def test_two_processes_train_like_one_and_their_checkpoint_restores_into_one(tmp_path: Path) -> None:
    port = free_port()
    ckpt = str(tmp_path / "ckpt")
    two = [
        start(str(STEPS), "--process-id", str(i), "--num-processes", "2", "--coordinator", f"127.0.0.1:{port}",
              "--save", ckpt, "--join-timeout", "120")
        for i in range(2)
    ]  # fmt: skip
    one = start(str(2 * STEPS), "--num-processes", "1", "--devices", "4")  # the uninterrupted run
    runs = [result(p) for p in two]
    single = result(one)
    restored = result(start(str(STEPS), "--num-processes", "1", "--devices", "4", "--restore", ckpt))

    assert [r["processes"] for r in runs] == [2, 2] and [r["devices"] for r in runs] == [4, 4]
    assert single["processes"] == 1 and single["devices"] == 4
    for r in runs:  # every process sees the same global losses
        # Same global batch, same programs: equal up to float32 rounding of the reductions.
        np.testing.assert_allclose(r["data_parallel"], single["data_parallel"][:STEPS], rtol=1e-5)
        np.testing.assert_allclose(r["tensor_parallel"], single["tensor_parallel"][:STEPS], rtol=1e-5)
        # The hidden layer's kernel is split over the "model" axis, which spans the processes.
        assert r["hidden_kernel_sharding"] == "P(None, 'model')"
        assert r["hidden_kernel_local_shape"] == [8, 16]
        assert r["hidden_kernel_whole_here"] is False
        # Saved by both processes, each its shards, then read back by both, checksums verified.
        assert r["tensor_parallel_restored_equal"] is True
    assert single["hidden_kernel_whole_here"] is True
    # Model, optimizer state and dropout RNG were restored: the run continues as if never stopped,
    # the tensor-parallel part too, though no process of the saving run held its kernel whole.
    np.testing.assert_allclose(restored["data_parallel"], single["data_parallel"][STEPS:], rtol=1e-5)
    np.testing.assert_allclose(restored["tensor_parallel"], single["tensor_parallel"][STEPS:], rtol=1e-5)


def test_a_process_left_alone_stops_with_a_clear_error() -> None:
    port = free_port()
    began = time.monotonic()
    alone = [  # process 0 whose peer never comes, and process 1 whose coordinator is not there
        start("2", "--process-id", "0", "--num-processes", "2", "--coordinator", f"127.0.0.1:{port}", "--join-timeout", "5"),
        start("2", "--process-id", "1", "--num-processes", "2", "--coordinator", f"127.0.0.1:{free_port()}", "--join-timeout", "5"),
    ]  # fmt: skip
    for proc, words in zip(alone, ("not all 2 processes joined", "could not join the coordinator")):
        code, _, err = finish(proc, limit=240)
        assert code == 3, err[-3000:]
        assert words in err and "--num-processes and --coordinator" in err
    assert time.monotonic() - began < 240
