# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn and tqdm are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Save, restore and resume: a resumed run reproduces the uninterrupted one exactly.

The whole training state is one module: the model (parameters, BatchNorm
statistics, a dropout RNG stream) and the Adam moments, kept in cells of a
kind of our own. Halfway through, it is saved twice: to one safetensors file
(``nnx.checkpoint.save``) and to an orbax directory managed step by step
(``nnx.checkpoint.CheckpointManager``, keeping the last 2). A fresh trainer,
built from a different seed, is restored from each and trained on: its
losses equal those of the run that never stopped, bit for bit, because the
RNG keys and counters come back with everything else.

Run: python examples/checkpointing.py [--steps 60]
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path
from typing import Any, cast
import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

import nnx


class OptVar(nnx.Variable[jax.Array]):
    """Optimizer state (Adam moments, step count): saved and restored like any state."""


class Net(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.w1 = nnx.Param(jax.random.normal(rngs.params(), (64, 128)) * 0.1)
        self.w2 = nnx.Param(jax.random.normal(rngs.params(), (128, 10)) * 0.1)
        self.mean = nnx.BatchStat(jnp.zeros((128,)))
        self.rngs = rngs

    def __call__(self, x: jax.Array) -> jax.Array:
        h = x @ self.w1.value
        self.mean.value = 0.9 * self.mean.value + 0.1 * h.mean(0)
        h = jax.nn.relu(h - self.mean.value)
        keep = jax.random.bernoulli(self.rngs.dropout(), 0.9, h.shape)  # dropout: draws keys
        return (h * keep / 0.9) @ self.w2.value


class Trainer(nnx.Module):
    """The model plus its optimizer state, so one checkpoint holds everything."""

    def __init__(self, seed: int, tx: optax.GradientTransformation) -> None:
        self.net = Net(rngs=nnx.Rngs(seed, dropout=seed + 1))
        self.tx = tx
        leaves, self.treedef = jax.tree.flatten(tx.init(nnx.state(self.net, nnx.Param)))
        self.opt = [OptVar(leaf) for leaf in leaves]

    def step(self, x: jax.Array, y: jax.Array) -> jax.Array:
        graphdef, params, rest = nnx.split(self.net, nnx.Param, ...)

        def loss_fn(p: nnx.State[Net]) -> tuple[jax.Array, nnx.State[Net]]:
            net = nnx.merge(graphdef, p, rest)
            loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(net(x), y).mean()
            return loss, nnx.state(net, nnx.Not(nnx.Param))

        (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        value: jax.Array = loss
        opt_state = jax.tree.unflatten(self.treedef, [cell.value for cell in self.opt])
        updates, opt_state = self.tx.update(grads, opt_state, params)
        new_params = cast(nnx.State[Net], optax.apply_updates(params, updates))  # the same State structure
        nnx.update(self.net, new_params, new_rest)
        for cell, leaf in zip(self.opt, jax.tree.leaves(opt_state)):
            cell.value = leaf
        return value


@jax.jit
def train_step(graphdef: nnx.GraphDef[Trainer], state: nnx.State[Trainer], x: jax.Array, y: jax.Array) -> tuple[jax.Array, nnx.State[Trainer]]:
    trainer = nnx.merge(graphdef, state)
    loss = trainer.step(x, y)
    return loss, nnx.state(trainer)


def train(trainer: Trainer, batches: list[tuple[jax.Array, jax.Array]]) -> list[float]:
    losses: list[float] = []
    for x, y in batches:
        graphdef, state = nnx.split(trainer)
        loss, state = train_step(graphdef, state, x, y)
        nnx.update(trainer, state)
        losses.append(float(loss))
    return losses


def load_digits() -> tuple[jax.Array, jax.Array]:
    """scikit-learn's bundled 8x8 digits (no download): pixels scaled to [0, 1], and labels."""
    datasets: Any = importlib.import_module("sklearn.datasets")  # by name: scikit-learn is untyped
    digits = datasets.load_digits()
    return jnp.asarray(digits.data / 16.0, dtype=jnp.float32), jnp.asarray(digits.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    args, _ = parser.parse_known_args()  # a test runner's own arguments are ignored
    half = args.steps // 2

    x_all, y_all = load_digits()
    rng = np.random.default_rng(0)
    batches = [(x_all[i], y_all[i]) for i in (rng.choice(len(x_all), 64, replace=False) for _ in range(args.steps))]
    tx = optax.adam(3e-3)

    # The run that never stops.
    straight = Trainer(0, tx)
    losses = train(straight, batches)

    # The same run, saved at half time.
    first = Trainer(0, tx)
    first_losses = train(first, batches[:half])
    with tempfile.TemporaryDirectory() as tmp:
        file = nnx.checkpoint.save(Path(tmp) / "trainer.safetensors", first)
        print(f"saved {len(nnx.state(first).paths)} arrays to {file.name} ({file.stat().st_size:,} bytes)")
        with nnx.checkpoint.CheckpointManager(Path(tmp) / "run", max_to_keep=2) as manager:
            for step in range(half - 2, half + 1):  # older steps are dropped as new ones arrive
                manager.save(step, first)
            print(f"orbax steps kept: {manager.all_steps()}")

            def from_file(trainer: Trainer) -> None:
                nnx.checkpoint.restore(file, trainer)

            def from_manager(trainer: Trainer) -> None:
                manager.restore(trainer)  # the latest step

            resumed: dict[str, list[float]] = {}
            for name, restore in (("safetensors", from_file), ("orbax", from_manager)):
                fresh = Trainer(123, tx)  # different seed: every value must come from the checkpoint
                restore(fresh)
                resumed[name] = first_losses + train(fresh, batches[half:])

    for name, run in resumed.items():
        assert run == losses, f"{name}: resumed losses differ from the uninterrupted run"
        print(f"{name:12s} resumed at step {half}: {len(run)} losses identical to the uninterrupted run")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < losses[0]


if __name__ == "__main__":
    main()
