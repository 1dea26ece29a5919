# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""A small CNN on scikit-learn's 8x8 handwritten digits (bundled with scikit-learn, no download).

Conv + BatchNorm + Dropout, Adam, ``model.train()`` / ``model.eval()``, metrics
updated inside ``nnx.jit``. The full run reaches >= 97% test accuracy in well
under a minute on two CPU cores.

Run: python examples/digits.py            (full run)
     python examples/digits.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from _progress import progress

import nnx


def load_digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Images ``(1797, 8, 8, 1)`` scaled to [0, 1] and integer labels."""
    from sklearn.datasets import load_digits as sklearn_digits  # type: ignore[import-untyped]  # pyright: ignore[reportMissingTypeStubs]  # untyped

    bunch: Any = sklearn_digits()
    images = np.asarray(bunch.images, np.float32)[..., None] / 16.0
    return images, np.asarray(bunch.target, np.int32)


class CNN(nnx.Module):
    """Two 3x3 convolutions with BatchNorm, average pooling, and a dropout MLP head."""

    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(1, 32, (3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(32, momentum=0.9, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), rngs=rngs)
        self.bn2 = nnx.BatchNorm(64, momentum=0.9, rngs=rngs)
        self.fc1 = nnx.Linear(4 * 4 * 64, 128, rngs=rngs)
        self.dropout = nnx.Dropout(0.3, rngs=rngs)
        self.fc2 = nnx.Linear(128, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.bn1(self.conv1(x)))
        x = nnx.relu(self.bn2(self.conv2(x)))
        x = nnx.avg_pool(x, (2, 2), strides=(2, 2))  # 8x8 -> 4x4
        x = x.reshape(x.shape[0], -1)
        x = self.dropout(nnx.relu(self.fc1(x)))
        return self.fc2(x)


def loss_fn(model: CNN, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = model(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits


@nnx.jit
def train_step(model: CNN, optimizer: nnx.Optimizer, metrics: nnx.MultiMetric, x: jax.Array, y: jax.Array) -> None:
    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, x, y)
    optimizer.update(model, grads)  # in place: no state is returned
    metrics.update(loss=loss, logits=logits, labels=y)


@nnx.jit
def eval_step(model: CNN, metrics: nnx.MultiMetric, x: jax.Array, y: jax.Array) -> None:
    loss, logits = loss_fn(model, x, y)
    metrics.update(loss=loss, logits=logits, labels=y)


def batches(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], size: int, rng: np.random.Generator | None
) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Mini-batches (shuffled when ``rng`` is given; the last partial batch is dropped)."""
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for start in range(0, len(x) - size + 1, size):
        idx = order[start : start + size]
        yield jnp.asarray(x[idx]), jnp.asarray(y[idx])


def evaluate(model: CNN, metrics: nnx.MultiMetric, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> dict[str, float]:
    model.eval()  # BatchNorm uses its running averages, Dropout is off
    metrics.reset()
    for bx, by in batches(x, y, len(x), None):  # the whole test set as one batch
        eval_step(model, metrics, bx, by)
    return {k: float(v) for k, v in metrics.compute().items()}


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv, full=12, quick=2, count="epochs")
    epochs = args.count

    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:360], order[360:]
    x_train, y_train, x_test, y_test = images[train], labels[train], images[test], labels[test]
    print(f"digits: {len(x_train)} train / {len(x_test)} test images of 8x8; {epochs} epochs")

    model = CNN(rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(2e-3), wrt=nnx.Param)
    metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())
    initial = evaluate(model, metrics, x_test, y_test)

    start = time.perf_counter()
    rng = np.random.default_rng(1)
    result = initial
    for epoch in range(1, epochs + 1):
        model.train()
        metrics.reset()
        bar = progress(batches(x_train, y_train, 64, rng), total=len(x_train) // 64, desc=f"epoch {epoch}", leave=False)
        for bx, by in bar:
            train_step(model, optimizer, metrics, bx, by)
        train_result = {k: float(v) for k, v in metrics.compute().items()}
        result = evaluate(model, metrics, x_test, y_test)
        print(
            f"epoch {epoch:2d}  train loss {train_result['loss']:.4f} acc {train_result['accuracy']:.3f}  "
            f"test loss {result['loss']:.4f} acc {result['accuracy']:.3f}"
        )
    seconds = time.perf_counter() - start

    print(
        f"test accuracy {initial['accuracy']:.3f} -> {result['accuracy']:.3f} after {int(optimizer.step.value)} "
        f"steps in {seconds:.1f}s (jax {jax.__version__}, {jax.devices()[0].platform})"
    )
    assert result["accuracy"] > initial["accuracy"] + 0.3, "training did not improve the test accuracy"
    if args.full:
        assert result["accuracy"] >= 0.97, f"expected >= 97% test accuracy, got {result['accuracy']:.3f}"
    return {"accuracy": result["accuracy"], "seconds": seconds}


if __name__ == "__main__":
    main()
