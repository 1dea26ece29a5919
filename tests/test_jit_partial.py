"""``nnx.jit_partial``: nnx.jit with its first arguments bound once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
import pytest

import nnx


class Counter(nnx.Module):
    def __init__(self) -> None:
        self.count = nnx.Variable(jnp.array(0))
        self.w = nnx.Param(jnp.ones((2, 3)))


def step(m: Counter, x: jax.Array) -> jax.Array:
    m.count.value = m.count.value + 1
    return x @ m.w.value


def test_calls_with_the_bound_arguments_first_and_lands_updates() -> None:
    m = Counter()
    f = nnx.jit_partial(step, m)
    x = jnp.ones((1, 2))
    np.testing.assert_allclose(f(x), np.full((1, 3), 2.0))
    np.testing.assert_allclose(f(x), np.full((1, 3), 2.0))
    assert int(m.count.value) == 2


def test_new_state_values_do_not_retrace() -> None:
    traces: list[int] = []
    m = Counter()

    def traced(m: Counter, x: jax.Array) -> jax.Array:
        traces.append(1)
        return step(m, x)

    f = nnx.jit_partial(traced, m)
    x = jnp.ones((1, 2))
    f(x)
    m.w.value = jnp.zeros((2, 3))
    np.testing.assert_allclose(f(x), np.zeros((1, 3)))
    assert len(traces) == 1


def test_lower_compile_lands_updates_and_rejects_other_structures() -> None:
    m = Counter()
    compiled = nnx.jit_partial(step, m).lower(jnp.ones((1, 2))).compile()
    np.testing.assert_allclose(compiled(jnp.ones((1, 2))), np.full((1, 3), 2.0))
    compiled(jnp.ones((1, 2)))
    assert int(m.count.value) == 2
    setattr(m, "extra", nnx.Param(jnp.zeros(1)))  # the bound module changed structure
    with pytest.raises(ValueError, match="lowered for arguments of another structure"):
        compiled(jnp.ones((1, 2)))
    assert int(m.count.value) == 2


def test_no_bound_arguments_and_several() -> None:
    def double(x: jax.Array) -> jax.Array:
        return x * 2

    np.testing.assert_allclose(nnx.jit_partial(double)(jnp.array(3.0)), 6.0)
    m1, m2 = nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.Linear(3, 4, rngs=nnx.Rngs(1))

    def chain(a: nnx.Linear, b: nnx.Linear, x: jax.Array) -> jax.Array:
        return b(a(x))

    assert nnx.jit_partial(chain, m1, m2)(jnp.ones((1, 2))).shape == (1, 4)


def test_train_step_updates_model_and_optimizer() -> None:
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
    before = np.asarray(model.kernel)

    def train_step(model: nnx.Linear, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(model: nnx.Linear) -> jax.Array:
            return jnp.mean((model(x) - y) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    f = nnx.jit_partial(train_step, model, optimizer)
    first = f(jnp.ones((4, 2)), jnp.zeros((4, 3)))
    second = f(jnp.ones((4, 2)), jnp.zeros((4, 3)))
    assert float(second) < float(first)
    assert not np.allclose(np.asarray(model.kernel), before)


def test_shared_cell_between_bound_modules() -> None:
    v = nnx.Param(jnp.array(1.0))
    a, b = nnx.List([v]), nnx.List([v])

    def f(a: nnx.List[nnx.Param[jax.Array]], b: nnx.List[nnx.Param[jax.Array]], x: jax.Array) -> jax.Array:
        a[0].value = a[0].value + x
        return a[0].value + b[0].value

    np.testing.assert_allclose(nnx.jit_partial(f, a, b)(jnp.array(1.0)), 4.0)
    np.testing.assert_allclose(v.value, 2.0)


# -- nnx.grad / nnx.value_and_grad as decorator factories -------------------------


def test_grad_and_value_and_grad_without_fun_are_decorators() -> None:
    @nnx.grad(argnums=1)
    def loss(scale: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.sum(scale * x**2)

    np.testing.assert_allclose(loss(jnp.array(2.0), jnp.array([1.0, 3.0])), [4.0, 12.0])

    @nnx.value_and_grad(has_aux=True)
    def with_aux(model: nnx.Linear) -> tuple[jax.Array, str]:
        return jnp.sum(model.kernel.value), "aux"

    (value, aux), grads = with_aux(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    assert aux == "aux" and value.shape == ()
    np.testing.assert_allclose(grads["kernel"], np.ones((2, 3)))
