"""nnx in one screen: declare a model, share a layer, train it with jax.jit + optax.

Run: python examples/demo.py            (full run)
     python examples/demo.py --quick    (a few steps; what CI runs, also with NNX_EXAMPLES_QUICK=1)
"""

from __future__ import annotations

from typing import Callable, cast

import jax
import jax.numpy as jnp
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from _cli import parse_args

import nnx


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.w = jax.random.normal(rngs.params(), (din, dout)) / jnp.sqrt(din)
        self.b = jnp.zeros((dout,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


class Count(nnx.Variable[jax.Array]):
    """A user-defined kind of state: how many forward passes ran."""


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.inp = Linear(1, 32, rngs=rngs)
        self.hidden = Linear(32, 32, rngs=rngs)  # used twice: weights shared
        self.out = Linear(32, 1, rngs=rngs)
        self.calls = Count(jnp.array(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        self.calls += 1
        h = jax.nn.tanh(self.inp(x))
        h = jax.nn.tanh(self.hidden(h))
        h = jax.nn.tanh(self.hidden(h))
        return self.out(h)


#: The type of the training step (a module-level alias, so that a cast can name it).
StepFn = Callable[
    [nnx.State[MLP], nnx.State[MLP], optax.OptState], tuple[nnx.State[MLP], nnx.State[MLP], optax.OptState, jax.Array]
]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, argv, full=300, quick=60)
    model = MLP(rngs=nnx.Rngs(0))
    print(model)

    x = jnp.linspace(-3, 3, 128)[:, None]
    y = jnp.sin(x)

    graphdef, params, counts = nnx.split(model, nnx.Param, Count)
    tx = optax.adam(1e-2)
    opt_state = tx.init(params)
    print("parameter paths:", [".".join(map(str, p)) for p in params.paths])

    def train_step(
        params: nnx.State[MLP], counts: nnx.State[MLP], opt_state: optax.OptState
    ) -> tuple[nnx.State[MLP], nnx.State[MLP], optax.OptState, jax.Array]:
        def loss_fn(params: nnx.State[MLP]) -> tuple[jax.Array, nnx.State[MLP]]:
            model = nnx.merge(graphdef, params, counts)
            loss = jnp.mean((model(x) - y) ** 2)
            return loss, nnx.state(model, Count)

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)  # pyright: ignore[reportUnknownMemberType]  # jax: bare Callable
        (loss, counts), grads = grad_fn(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = cast(nnx.State[MLP], optax.apply_updates(params, updates))  # optax returns its own Params type
        return params, counts, opt_state, loss

    # jax.jit keeps the call signature at run time; jax types the wrapped call loosely.
    jitted_step = cast(StepFn, jax.jit(train_step))  # pyright: ignore[reportUnknownMemberType]  # jax: bare Callable

    losses: list[float] = []
    for step in range(args.count):
        params, counts, opt_state, loss = jitted_step(params, counts, opt_state)
        losses.append(float(loss))
        if step % max(1, args.count // 3) == 0 or step == args.count - 1:
            print(f"step {step:3d}  loss {float(loss):.4f}")

    nnx.update(model, params, counts)  # back to the object world, in place
    print(f"forward passes counted: {int(model.calls.value)}")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < (losses[0] / 5 if args.full else losses[0]), "training did not converge"


if __name__ == "__main__":
    main()
