# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Data-parallel training of a digits classifier on 8 (simulated) devices.

Every parameter names its logical axes (``nnx.with_partitioning``); rules map
them to the mesh, so the same model runs replicated (data parallel, here) or
split (tensor parallel: map "mlp" to a "model" mesh axis). The model is
created directly in its sharded layout (``nnx.init_sharded``), each batch is
split over the 8 devices, and JAX's SPMD partitioner inserts the gradient
all-reduce. The first step is checked against the same step on one device.

Run: python examples/sharded_training.py [--steps 300] [--quick]
(8 CPU devices are simulated with XLA_FLAGS=--xla_force_host_platform_device_count=8.)
"""

from __future__ import annotations

import os
import subprocess
import sys

FLAG = "--xla_force_host_platform_device_count=8"
if "jax" not in sys.modules:  # the flag only works before JAX starts
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FLAG}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import importlib
from typing import Any, Callable, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from jax.sharding import Mesh, NamedSharding

import nnx

Params = nnx.State["Classifier"]
Step = Callable[[Params, Any, jax.Array, jax.Array], tuple[Params, Any, jax.Array]]
RULES = [("batch", "data"), ("embed", None), ("mlp", None)]  # data parallel: weights replicated


def dense(din: int, dout: int, axes: tuple[str, str], *, rngs: nnx.Rngs) -> nnx.Linear:
    """An ``nnx.Linear`` whose kernel and bias name their logical axes."""
    kernel_init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), axes)
    bias_init = nnx.with_partitioning(jax.nn.initializers.zeros, axes[1:])
    return nnx.Linear(din, dout, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)


class Classifier(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.hidden = dense(64, 256, ("embed", "mlp"), rngs=rngs)
        self.out = dense(256, 10, ("mlp", "classes"), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jax.nn.relu(self.hidden(x)))


def make_step(graphdef: nnx.GraphDef[Classifier], tx: optax.GradientTransformation) -> Step:
    def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
        logits = nnx.merge(graphdef, params)(x)
        loss: jax.Array = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss

    def step(params: Params, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[Params, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        new_params = cast(Params, optax.apply_updates(params, updates))  # the same State structure
        return new_params, opt_state, loss

    return step


def load_digits() -> tuple[jax.Array, jax.Array]:
    """scikit-learn's bundled 8x8 digits (no download): pixels scaled to [0, 1], and labels."""
    datasets: Any = importlib.import_module("sklearn.datasets")  # by name: scikit-learn is untyped
    digits = datasets.load_digits()
    return jnp.asarray(digits.data / 16.0, dtype=jnp.float32), jnp.asarray(digits.target)


def accuracy(graphdef: nnx.GraphDef[Classifier], params: Params, x: jax.Array, y: jax.Array) -> float:
    return float(jnp.mean(jnp.argmax(nnx.merge(graphdef, params)(x), -1) == y))


def train(steps: int) -> None:
    x_all, y_all = load_digits()
    x_train, y_train, x_test, y_test = x_all[:1536], y_all[:1536], x_all[1536:], y_all[1536:]

    mesh = Mesh(np.array(jax.devices()), ("data",))
    model = nnx.init_sharded(lambda: Classifier(rngs=nnx.Rngs(0)), mesh, RULES)
    print(nnx.tabulate(model, jnp.zeros((128, 64))))
    graphdef, params = nnx.split(model)
    param_shardings: Params = nnx.get_named_sharding(params, mesh, RULES)
    batch = NamedSharding(mesh, nnx.logical_to_mesh_axes(("batch", None), RULES))
    labels = NamedSharding(mesh, nnx.logical_to_mesh_axes(("batch",), RULES))

    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    step = make_step(graphdef, tx)
    parallel = jax.jit(step, in_shardings=(param_shardings, None, batch, labels), out_shardings=(param_shardings, None, None))
    single = jax.jit(step)

    rng = np.random.default_rng(0)
    batches = [rng.choice(len(x_train), 128, replace=False) for _ in range(steps)]
    # The parallel step computes what one device computes.
    on_one: tuple[Params, Any, jax.Array] = single(params, opt_state, x_train[batches[0]], y_train[batches[0]])
    losses: list[float] = []
    for i, idx in enumerate(batches):
        x = jax.device_put(x_train[idx], batch)
        y = jax.device_put(y_train[idx], labels)
        params, opt_state, loss = parallel(params, opt_state, x, y)
        if i == 0:
            np.testing.assert_allclose(float(loss), float(on_one[2]), rtol=1e-5)
            for a, b in zip(params.leaves, on_one[0].leaves):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        losses.append(float(loss))
        if i % max(1, steps // 5) == 0:
            print(f"step {i:4d}  loss {losses[-1]:.4f}  batch split over {len(x.addressable_shards)} devices")

    test_acc = accuracy(graphdef, params, x_test, y_test)
    print(f"devices: {jax.device_count()}  final loss {np.mean(losses[-10:]):.4f}  test accuracy {test_acc:.3f}")
    full = steps >= 300  # shorter runs (--steps) only have to make progress
    assert np.mean(losses[-10:]) < losses[0] * (0.1 if full else 0.9), "training did not reduce the loss"
    assert test_acc >= (0.85 if full else 0.2), f"test accuracy {test_acc:.3f} is too low"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, argv, full=300, quick=60)
    if jax.device_count() < 8:
        # JAX was started before this script could ask for 8 devices (e.g. by a
        # test runner that imported it): run it again in a fresh process.
        env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {FLAG}".strip(), "JAX_PLATFORMS": "cpu"}
        done = subprocess.run([sys.executable, __file__, "--steps", str(args.count)], env=env, capture_output=True, text=True)
        print(done.stdout, end="")
        if done.returncode != 0:
            raise RuntimeError(f"sharded_training.py failed in its own process:\n{done.stderr[-4000:]}")
        return
    train(args.count)


if __name__ == "__main__":
    main()
