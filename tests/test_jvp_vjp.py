"""nnx.vjp and nnx.jvp: jax.vjp / jax.jvp for functions of modules."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx


class Foo(nnx.Module):
    def __init__(self, w: list[float]) -> None:
        self.w = nnx.Param(jnp.array(w))
        self.b = nnx.Param(jnp.array(0.5))
        self.count = nnx.BatchStat(jnp.array(0))


def f(m: Foo, x: jax.Array) -> jax.Array:
    m.count.value = m.count.value + 1
    return jnp.sum(m.w.value * x) + m.b.value


def test_vjp_cotangents_per_primal_and_state_lands_once() -> None:
    m, x = Foo([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0, 6.0])
    y, vjp_fn = nnx.vjp(f, m, x)
    np.testing.assert_allclose(y, 32.5)
    assert int(m.count.value) == 1
    m_ct, x_ct = vjp_fn(jnp.array(2.0))
    assert isinstance(m_ct, nnx.State) and set(m_ct.paths) == {("w",), ("b",)}
    np.testing.assert_allclose(m_ct["w"], 2 * np.array([4.0, 5.0, 6.0]))
    np.testing.assert_allclose(m_ct["b"], 2.0)
    np.testing.assert_allclose(x_ct, 2 * np.array([1.0, 2.0, 3.0]))
    assert int(m.count.value) == 1


def test_vjp_has_aux_and_decorator() -> None:
    def with_aux(m: Foo, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        return f(m, x), {"x": x}

    m, x = Foo([1.0, 2.0]), jnp.array([3.0, 4.0])
    y, _, aux = nnx.vjp(with_aux, m, x, has_aux=True)
    np.testing.assert_allclose(aux["x"], x)
    decorated = nnx.vjp()(f)
    y2, vjp_fn = decorated(m, x)
    np.testing.assert_allclose(y, y2)
    np.testing.assert_allclose(vjp_fn(jnp.ones(()))[1], [1.0, 2.0])


def test_jvp_with_a_state_tangent_and_missing_leaves_are_zero() -> None:
    m, x = Foo([1.0, 2.0, 3.0]), jnp.array([4.0, 5.0, 6.0])
    tangent = nnx.State({"w": jnp.ones(3)})  # b left out: zero tangent
    y, y_dot = nnx.jvp(f, (m, x), (tangent, jnp.ones(3)))
    np.testing.assert_allclose(y, 32.5)
    np.testing.assert_allclose(y_dot, np.sum(np.array([4.0, 5.0, 6.0]) + np.array([1.0, 2.0, 3.0])))
    assert int(m.count.value) == 1
    def with_aux(m: Foo, x: jax.Array) -> tuple[jax.Array, str]:
        return f(m, x), "aux"

    _, _, aux = nnx.jvp(with_aux, (m, x), (tangent, jnp.zeros(3)), has_aux=True)
    assert aux == "aux"
    decorated = nnx.jvp()(f)
    np.testing.assert_allclose(decorated((m, x), (tangent, jnp.ones(3)))[1], y_dot)


def test_jvp_bad_tangents_raise_before_running() -> None:
    m, x = Foo([1.0]), jnp.array([1.0])
    with pytest.raises(ValueError, match=r"entries \['count'\] that are not differentiated state"):
        nnx.jvp(f, (m, x), (nnx.State({"count": jnp.array(1)}), x))
    with pytest.raises(TypeError, match="must be a State of its differentiated leaves"):
        nnx.jvp(f, (m, x), (jnp.ones(1), x))
    with pytest.raises(ValueError, match="one tangent per primal"):
        nnx.jvp(f, (m, x), (x,))
    assert int(m.count.value) == 0


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=1, max_size=4))
def test_match_jax_on_arrays_and_nnx_grad_on_modules(ws: list[float]) -> None:
    w = jnp.array(ws)
    x = jnp.arange(len(ws), dtype=jnp.float32) + 1.0

    def g(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(jnp.sin(a) * b)

    expected: Any = jax.jvp(g, (w, x), (x, w))  # pyright: ignore[reportUnknownMemberType]  # jax: primals untyped
    got = nnx.jvp(g, (w, x), (x, w))
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-5, atol=1e-6)

    m = Foo(ws)
    _, vjp_fn = nnx.vjp(f, m, x)
    reference = nnx.grad(f)(Foo(ws), x)
    np.testing.assert_allclose(vjp_fn(jnp.ones(()))[0]["w"], reference["w"], rtol=1e-6)


# -- nnx.DiffState in argnums ------------------------------------------------------


class Adapter(nnx.Module):
    def __init__(self) -> None:
        self.base = nnx.Param(jnp.array(2.0))
        self.lora = nnx.Param(jnp.array(3.0))


def product(a: Adapter, b: Adapter) -> jax.Array:
    return a.base.value * a.lora.value * b.base.value


def test_diff_state_gives_each_argument_its_own_filter() -> None:
    a, b = Adapter(), Adapter()
    ga = nnx.grad(product, argnums=nnx.DiffState(0, nnx.PathContains("lora")))(a, b)
    assert ga.paths == (("lora",),)
    np.testing.assert_allclose(ga["lora"], 2.0 * 2.0)
    ga, gb = nnx.grad(product, argnums=(nnx.DiffState(0, nnx.PathContains("base")), 1))(a, b)
    assert ga.paths == (("base",),) and set(gb.paths) == {("base",), ("lora",)}
    np.testing.assert_allclose(gb["base"], 2.0 * 3.0)
    np.testing.assert_allclose(gb["lora"], 0.0)
    with pytest.raises(ValueError, match="matches no state of argument 1"):
        nnx.grad(product, argnums=nnx.DiffState(1, nnx.BatchStat))(a, b)
