# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Save, restore and resume: a resumed run reproduces the uninterrupted one exactly.

The whole training state is one object: an ``nnx.Optimizer``, which holds the
model (Linear and BatchNorm parameters, BatchNorm statistics, the Dropout RNG
stream) and the Adam moments. Halfway through, it is saved twice: to one
safetensors file (``nnx.checkpoint.save``) and to an orbax directory managed
step by step (``nnx.checkpoint.CheckpointManager``, keeping the last 2). A
fresh optimizer and model, built from another seed, are restored from each and
trained on: their losses equal those of the run that never stopped, bit for
bit, because the RNG keys and counters come back with everything else.

Run: python examples/checkpointing.py [--steps 60] [--quick]
"""

from __future__ import annotations

import argparse
import os
import importlib
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

import nnx


class Net(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(64, 128, rngs=rngs)
        self.norm = nnx.BatchNorm(128, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.dropout(jax.nn.relu(self.norm(self.hidden(x)))))


def make(seed: int) -> tuple[Net, nnx.Optimizer]:
    """A model and its optimizer (which holds the model: saving it saves both)."""
    model = Net(rngs=nnx.Rngs(seed, dropout=seed + 1))
    return model, nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)


@nnx.jit
def train_step(model: Net, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    def loss_fn(model: Net) -> jax.Array:
        loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
        return loss

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    value: jax.Array = loss
    return value


def train(run: tuple[Net, nnx.Optimizer], batches: list[tuple[jax.Array, jax.Array]]) -> list[float]:
    return [float(train_step(*run, x, y)) for x, y in batches]


def load_digits() -> tuple[jax.Array, jax.Array]:
    """scikit-learn's bundled 8x8 digits (no download): pixels scaled to [0, 1], and labels."""
    datasets: Any = importlib.import_module("sklearn.datasets")  # by name: scikit-learn is untyped
    digits = datasets.load_digits()
    return jnp.asarray(digits.data / 16.0, dtype=jnp.float32), jnp.asarray(digits.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=None, help="default 60; 16 with --quick")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("NNX_EXAMPLES_QUICK") == "1",
                        help="a few steps (what CI runs; also NNX_EXAMPLES_QUICK=1)")
    args, _ = parser.parse_known_args()
    args.steps = args.steps or (16 if args.quick else 60)
    half = args.steps // 2

    x_all, y_all = load_digits()
    rng = np.random.default_rng(0)
    batches = [(x_all[i], y_all[i]) for i in (rng.choice(len(x_all), 64, replace=False) for _ in range(args.steps))]

    losses = train(make(0), batches)  # the run that never stops

    first = make(0)  # the same run, saved at half time
    first_losses = train(first, batches[:half])
    optimizer = first[1]
    with tempfile.TemporaryDirectory() as tmp:
        file = nnx.checkpoint.save(Path(tmp) / "train.safetensors", optimizer)
        print(f"saved {len(nnx.state(optimizer).paths)} arrays to {file.name} ({file.stat().st_size:,} bytes)")
        with nnx.checkpoint.CheckpointManager(Path(tmp) / "run", max_to_keep=2) as manager:
            for step in range(half - 2, half + 1):  # older steps are dropped as new ones arrive
                manager.save(step, optimizer)
            print(f"orbax steps kept: {manager.all_steps()}")

            def from_file(optimizer: nnx.Optimizer) -> None:
                nnx.checkpoint.restore(file, optimizer)

            def from_manager(optimizer: nnx.Optimizer) -> None:
                # As a restarted job would: a new manager over the same run directory.
                with nnx.checkpoint.CheckpointManager(Path(tmp) / "run", max_to_keep=2) as restarted:
                    restarted.restore(optimizer)  # the latest step

            resumed: dict[str, list[float]] = {}
            for name, restore in (("safetensors", from_file), ("orbax", from_manager)):
                fresh = make(123)  # another seed: every value must come from the checkpoint
                restore(fresh[1])
                resumed[name] = first_losses + train(fresh, batches[half:])

    for name, run in resumed.items():
        assert run == losses, f"{name}: resumed losses differ from the uninterrupted run"
        print(f"{name:12s} resumed at step {half}: {len(run)} losses identical to the uninterrupted run")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < losses[0]


if __name__ == "__main__":
    main()
