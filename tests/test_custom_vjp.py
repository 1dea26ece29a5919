"""``nnx.custom_vjp``: hand-written gradients for functions of modules."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx


class Foo(nnx.Module):
    def __init__(self, x: float, y: float) -> None:
        self.x = nnx.Param(jnp.array(x))
        self.y = nnx.Param(jnp.array(y))
        self.z = 0


def plain(m: Foo) -> jax.Array:
    return jnp.sin(m.x.value) * m.y.value


def make_f(scale_bwd: float = 1.0) -> nnx.CustomVjp[[Foo], jax.Array]:
    @nnx.custom_vjp
    def f(m: Foo) -> jax.Array:
        m.z += 1
        return plain(m)

    def f_fwd(m: Foo) -> tuple[jax.Array, Any]:
        return f(m), (jnp.cos(m.x.value), jnp.sin(m.x.value), m)

    def f_bwd(res: Any, g: Any) -> tuple[nnx.State[Any], ...]:
        cos_x, sin_x, m = res
        (m_g,), out_g = g
        assert isinstance(m_g, nnx.State) and set(m_g.paths) == {("x",), ("y",)}
        return (nnx.State({"x": scale_bwd * cos_x * out_g * m.y.value, "y": scale_bwd * sin_x * out_g}),)

    f.defvjp(f_fwd, f_bwd)
    return f


def test_grad_uses_the_backward_rule_and_lands_updates() -> None:
    f = make_f(scale_bwd=10.0)  # a rule that differs from the true gradient, to see it is used
    m = Foo(1.0, 2.0)
    np.testing.assert_allclose(f(m), np.sin(1.0) * 2.0, rtol=1e-6)
    assert m.z == 1
    grads = nnx.grad(f)(m)
    np.testing.assert_allclose(grads["x"], 10 * np.cos(1.0) * 2.0, rtol=1e-6)
    np.testing.assert_allclose(grads["y"], 10 * np.sin(1.0), rtol=1e-6)
    assert m.z == 2  # the forward rule's call changed the static attribute once


def test_under_jit_and_grad() -> None:
    f = make_f()
    m = Foo(0.5, 3.0)
    grads = nnx.jit(nnx.grad(f))(m)
    np.testing.assert_allclose(grads["x"], np.cos(0.5) * 3.0, rtol=1e-6)


def test_jit_of_a_wrapper_of_a_callable_object_calls_the_wrapper() -> None:
    # Regression: nnx.jit copied the wrapped function's __dict__ over its own
    # attributes, so a functools.wraps wrapper of an object with ``_fun`` compiled
    # that object's ``_fun`` instead of the wrapper.
    def not_me(x: jax.Array) -> str:
        return "not me"

    class Doubler:
        def __init__(self) -> None:
            self._fun = not_me

        def __call__(self, x: jax.Array) -> jax.Array:
            return x * 2

    doubler = Doubler()

    @functools.wraps(doubler)
    def plus_one(x: jax.Array) -> jax.Array:
        return doubler(x) + 1

    np.testing.assert_allclose(nnx.jit(plus_one)(jnp.array(1.0)), 3.0)


def test_nondiff_arguments_come_first_in_the_backward_rule() -> None:
    seen: list[tuple[Any, ...]] = []

    @nnx.custom_vjp(nondiff_argnums=(0, 2))
    def h(a: int, m: Foo, b: str) -> jax.Array:
        return plain(m) * a

    def h_fwd(a: int, m: Foo, b: str) -> tuple[jax.Array, Any]:
        return h(a, m, b), m

    def h_bwd(a: int, b: str, m: Foo, g: Any) -> tuple[dict[str, jax.Array]]:
        seen.append((a, b))
        _, out_g = g
        return ({"x": jnp.cos(m.x.value) * out_g * m.y.value * a},)  # "y" left out: zero

    h.defvjp(h_fwd, h_bwd)
    m = Foo(1.0, 2.0)

    def loss(m: Foo) -> jax.Array:
        return h(3, m, "tag")

    grads = nnx.grad(loss)(m)
    assert seen == [(3, "tag")]
    np.testing.assert_allclose(grads["x"], np.cos(1.0) * 2.0 * 3, rtol=1e-6)
    np.testing.assert_allclose(grads["y"], 0.0)


def test_two_module_arguments_and_a_returned_module() -> None:
    @nnx.custom_vjp
    def k(m1: Foo, m2: Foo) -> tuple[jax.Array, Foo]:
        return plain(m1), m2

    def k_fwd(m1: Foo, m2: Foo) -> tuple[tuple[jax.Array, Foo], Any]:
        return k(m1, m2), m1

    def k_bwd(m1: Foo, g: Any) -> tuple[nnx.State[Any], nnx.State[Any]]:
        (_, m2_g), (y_g, _) = g
        m1_g = nnx.State({"x": jnp.cos(m1.x.value) * y_g * m1.y.value, "y": jnp.sin(m1.x.value) * y_g})
        return m1_g, m2_g

    k.defvjp(k_fwd, k_bwd)

    def loss(m1: Foo, m2: Foo) -> jax.Array:
        y, out = k(m1, m2)
        return y + out.x.value * out.y.value

    g1, g2 = nnx.grad(loss, argnums=(0, 1))(Foo(1.0, 2.0), Foo(3.0, 4.0))
    np.testing.assert_allclose(g1["x"], np.cos(1.0) * 2.0, rtol=1e-6)
    np.testing.assert_allclose(g2["x"], 4.0)
    np.testing.assert_allclose(g2["y"], 3.0)


def test_array_arguments_take_array_cotangents() -> None:
    @nnx.custom_vjp
    def scale(m: Foo, x: jax.Array) -> jax.Array:
        return m.y.value * x

    def fwd(m: Foo, x: jax.Array) -> tuple[jax.Array, Any]:
        return scale(m, x), (m.y.value, x)

    def bwd(res: Any, g: Any) -> tuple[Any, jax.Array]:
        y, x = res
        (_, x_g), out_g = g
        assert x_g is None
        return {"y": jnp.sum(x * out_g)}, y * out_g

    scale.defvjp(fwd, bwd)
    def loss(x: jax.Array) -> jax.Array:
        return jnp.sum(scale(Foo(0.0, 5.0), x))

    grads = nnx.grad(loss)(jnp.ones(3))
    np.testing.assert_allclose(grads, np.full(3, 5.0))


def test_bad_rules_raise_and_leave_the_module_unchanged() -> None:
    @nnx.custom_vjp
    def f(m: Foo) -> jax.Array:
        m.z += 1
        return plain(m)

    def bad_bwd(res: Any, g: Any) -> tuple[dict[str, jax.Array]]:
        return ({"w": jnp.array(1.0)},)

    f.defvjp(lambda m: (f(m), None), bad_bwd)
    m = Foo(1.0, 2.0)
    with pytest.raises(ValueError, match="cotangent at 'w' for argument 0, which has no state there"):
        nnx.grad(f)(m)
    assert m.z == 0

    unset = nnx.custom_vjp(plain)
    with pytest.raises(TypeError, match=r"defvjp\(fwd, bwd\) before calling"):
        unset(m)
    with pytest.raises(TypeError, match="bound method"):
        nnx.custom_vjp(nnx.Linear(1, 1, rngs=nnx.Rngs(0)).__call__)


@settings(max_examples=10, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3))
def test_a_correct_rule_matches_nnx_grad_of_the_plain_function(x: float, y: float) -> None:
    f = make_f()
    custom = nnx.grad(f)(Foo(x, y))
    reference = nnx.grad(plain)(Foo(x, y))
    for key in ("x", "y"):
        np.testing.assert_allclose(custom[key], reference[key], rtol=1e-5, atol=1e-6)
