# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Scan over layers (seed 003): 8 identical blocks created under ``nnx.vmap``, applied with
``nnx.scan``, each with its own Dropout keys, all sharing one BatchNorm.

``nnx.vmap`` builds one ``Block`` whose parameters have a leading layer axis
(each layer initialised from its own key); ``nnx.scan`` slices one layer per
step. The BatchNorm is passed unmapped (``None``), so every step uses and
updates the same statistics in turn. Compiling one step instead of eight
keeps compile time flat in depth.

Run: python examples/scan_layers.py            (full run)
     python examples/scan_layers.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from _progress import progress

import nnx


class Block(nnx.Module):
    """Linear -> Dropout -> GELU, with a residual connection."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(dim, dim, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + nnx.gelu(self.dropout(self.linear(x)))


class ScanMLP(nnx.Module):
    def __init__(self, din: int, dim: int, dout: int, *, n_layers: int, rngs: nnx.Rngs) -> None:
        self.n_layers = n_layers
        self.inp = nnx.Linear(din, dim, rngs=rngs)
        # One Block with a leading axis of n_layers on all of its state; the Rngs
        # are forked, so every layer gets its own parameters and dropout keys.
        self.layers = nnx.vmap(lambda rngs: Block(dim, rngs=rngs), axis_size=n_layers)(rngs)
        self.bn = nnx.BatchNorm(dim, momentum=0.9, rngs=rngs)  # one BatchNorm shared by all layers
        self.out = nnx.Linear(dim, dout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        @nnx.scan(in_axes=(nnx.Carry, 0, None), out_axes=nnx.Carry)
        def through(x: jax.Array, block: Block, bn: nnx.BatchNorm) -> jax.Array:
            return bn(block(x))

        return self.out(through(self.inp(x), self.layers, self.bn))


def make_data(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """A smooth nonlinear regression target on 4 inputs."""
    x = jax.random.normal(key, (n, 4))
    y = jnp.sin(2.0 * x[:, :1]) * jnp.cos(x[:, 1:2]) + 0.5 * x[:, 2:3] * x[:, 3:4]
    return x, y


def loss_fn(model: ScanMLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((model(x) - y) ** 2)


@nnx.jit
def train_step(model: ScanMLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    loss: jax.Array
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def test_loss(model: ScanMLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return loss_fn(model, x, y)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv, full=800, quick=60)
    steps = args.count

    model = ScanMLP(4, 64, 1, n_layers=8, rngs=nnx.Rngs(params=0, dropout=1))
    print(f"layer stack: kernel {model.layers.linear.kernel.shape}, shared BatchNorm mean {model.bn.mean.shape}")
    keys = jax.random.key_data(nnx.state(model.layers, nnx.RngKey).leaves[0])
    assert len({tuple(k.tolist()) for k in keys}) == 8, "every layer has its own dropout key"
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    x_test, y_test = make_data(jax.random.key(100), 512)

    start = time.perf_counter()
    key = jax.random.key(1)
    losses: list[float] = []
    for step in (bar := progress(range(steps), desc="scan_layers", leave=False)):
        key, batch_key = jax.random.split(key)
        losses.append(float(train_step(model, optimizer, *make_data(batch_key, 128))))
        if step % 100 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start

    model.eval()  # Dropout off, the shared BatchNorm uses its running averages
    final = float(test_loss(model, x_test, y_test))
    counts = nnx.state(model.layers, nnx.RngCount).leaves[0]
    print(f"dropout draws per layer: {counts.tolist()}; shared BatchNorm mean[:3] = {model.bn.mean[:3]}")
    print(f"MSE: first training batch {losses[0]:.4f} -> test set {final:.4f} after {steps} steps in {seconds:.1f}s")
    assert final < losses[0] * 0.5, "training did not lower the loss"
    return {"initial": losses[0], "final": final}


if __name__ == "__main__":
    main()
