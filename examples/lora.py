# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Model surgery with LoRA (seed 001): train an MLP, swap its Linear layers for
``LoRALinear`` adapters that share the trained weights, and fine-tune only the
``LoRAParam`` cells on a new task; the base weights stay exactly as trained.

Run: python examples/lora.py            (full run)
     python examples/lora.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args
from _progress import progress

import nnx


class MLP(nnx.Module):
    """Seed 001's MLP (Linear -> BatchNorm -> Dropout -> GELU -> Linear) with one more hidden layer."""

    def __init__(self, din: int, hidden: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.linear1 = nnx.Linear(din, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, momentum=0.9, rngs=rngs)
        self.dropout = nnx.Dropout(0.05, rngs=rngs)
        self.linear2 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.linear3 = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.gelu(self.dropout(self.bn(self.linear1(x))))
        return self.linear3(nnx.gelu(self.linear2(h)))


Task = Callable[[jax.Array], jax.Array]


def task_a(x: jax.Array) -> jax.Array:
    return jnp.sin(3.0 * x[:, :1]) + x[:, 1:] ** 2


def task_b(x: jax.Array) -> jax.Array:  # a related task: shifted and rescaled
    return 0.8 * jnp.sin(3.0 * x[:, :1] + 0.5) + x[:, 1:] ** 2 - 0.3 * x[:, :1]


def mse(model: MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((model(x) - y) ** 2)


@nnx.jit(static_argnames="wrt")
def train_step(model: MLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array, wrt: type[nnx.Variable[jax.Array]]) -> jax.Array:
    loss: jax.Array
    loss, grads = nnx.value_and_grad(mse, wrt=wrt)(model, x, y)  # gradients only for what is trained
    optimizer.update(model, grads)
    return loss


@nnx.jit
def test_loss(model: MLP, x: jax.Array, y: jax.Array) -> jax.Array:
    return mse(model, x, y)


def train(model: MLP, optimizer: nnx.Optimizer, task: Task, steps: int, wrt: type[nnx.Variable[jax.Array]], name: str) -> None:
    model.train()
    key = jax.random.key(hash(name) % 1000)
    for step in (bar := progress(range(steps), desc=name, leave=False)):
        key, draw = jax.random.split(key)
        x = jax.random.uniform(draw, (128, 2), minval=-1.5, maxval=1.5)
        loss = train_step(model, optimizer, x, task(x), wrt=wrt)
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss):.4f}")
    model.eval()


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv, full=800, quick=80)
    steps = args.count
    x_test = jax.random.uniform(jax.random.key(99), (1024, 2), minval=-1.5, maxval=1.5)
    start = time.perf_counter()

    rngs = nnx.Rngs(0)
    model = MLP(2, 128, 1, rngs=rngs)
    train(model, nnx.Optimizer(model, optax.adam(3e-3)), task_a, steps, nnx.Param, "task A")
    print(f"task A after full training: test MSE {float(test_loss(model, x_test, task_a(x_test))):.4f}")

    # Surgery: each Linear becomes a LoRALinear over the *same* kernel and bias cells.
    model.linear1 = nnx.LoRALinear.from_linear(model.linear1, lora_rank=4, rngs=rngs)
    model.linear2 = nnx.LoRALinear.from_linear(model.linear2, lora_rank=4, rngs=rngs)
    model.linear3 = nnx.LoRALinear.from_linear(model.linear3, lora_rank=4, rngs=rngs)
    base = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    n_base = sum(int(np.prod(v.shape)) for v in base.leaves)
    n_lora = sum(int(np.prod(v.shape)) for v in nnx.state(model, nnx.LoRAParam).leaves)
    print(f"after surgery: {n_base} frozen base parameters, {n_lora} trainable LoRA parameters")

    before = float(test_loss(model, x_test, task_b(x_test)))
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.LoRAParam)
    train(model, optimizer, task_b, steps, nnx.LoRAParam, "task B (LoRA)")
    after = float(test_loss(model, x_test, task_b(x_test)))
    seconds = time.perf_counter() - start

    unchanged = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))) == base
    print(f"task B with LoRA only: test MSE {before:.4f} -> {after:.4f}; base weights unchanged: {unchanged} ({seconds:.1f}s)")
    assert unchanged, "training only LoRAParam must leave the base weights as they were"
    assert after < (0.5 * before if args.full else before), "LoRA fine-tuning did not lower the task B loss"
    return {"before": before, "after": after}


if __name__ == "__main__":
    main()
