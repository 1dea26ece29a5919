"""Checkpoint throughput: save and restore a model through both back ends.

A model of 8 layers of (1024, 1024) float32 parameters (32 MiB) plus an RNG
stream is saved and restored into an existing model with
``nnx.checkpoint.save/restore`` (safetensors) and ``save_orbax/restore_orbax``,
beside ``numpy.save``/``numpy.load`` of the same arrays (one .npz) as a floor.
Best of three, in the same process, on a local temporary directory.

Run: python benchmarks/checkpoint_io.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import nnx


class Layer(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self, key: jax.Array) -> None:
        self.w = jax.random.normal(key, (1024, 1024))


class Stack(nnx.Module):
    def __init__(self, seed: int) -> None:
        self.layers = [Layer(k) for k in jax.random.split(jax.random.key(seed), 8)]
        self.rngs = nnx.Rngs(seed)


def best_seconds(fn: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    times: list[float] = []
    for _ in range(3):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    model, target = Stack(0), Stack(1)
    megabytes = sum(int(np.prod(v.shape)) * 4 for v in nnx.state(model, nnx.Param).leaves) / 2**20
    tmp = Path(tempfile.mkdtemp())
    try:
        file = tmp / "m.safetensors"
        orbax_dir = tmp / "orbax"
        npz = tmp / "m.npz"
        arrays = {str(i): np.asarray(v) for i, v in enumerate(nnx.state(model, nnx.Param).leaves)}

        def block() -> None:
            jax.block_until_ready(nnx.state(target).leaves)

        rows = [
            ("numpy savez", best_seconds(lambda: np.savez(npz, **arrays))),
            ("numpy load", best_seconds(lambda: [np.asarray(a) for a in np.load(npz).values()])),
            ("safetensors save", best_seconds(lambda: nnx.checkpoint.save(file, model))),
            ("safetensors restore", best_seconds(lambda: (nnx.checkpoint.restore(file, target), block()))),
            (
                "orbax save",
                best_seconds(lambda: nnx.checkpoint.save_orbax(orbax_dir, model, force=True)),
            ),
            ("orbax restore", best_seconds(lambda: (nnx.checkpoint.restore_orbax(orbax_dir, target), block()))),
        ]
        print(f"model: {megabytes:.0f} MiB of float32 parameters, jax {jax.__version__}, {jax.devices()[0].platform}")
        for name, seconds in rows:
            print(f"{name:22s} {seconds * 1000:8.1f} ms  {megabytes / seconds:8.0f} MiB/s")
        assert jnp.array_equal(model.layers[3].w, target.layers[3].w)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
