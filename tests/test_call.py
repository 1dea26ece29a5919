"""``nnx.call``: merge, call a method, split again, for modules carried as pure pairs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx
from typed_jax import jit


class Counter(nnx.Module):
    def __init__(self, din: int, dout: int, rngs: nnx.Rngs) -> None:
        self.w = nnx.Param(jax.random.uniform(rngs(), (din, dout)))
        self.count = nnx.Variable(jnp.array(0, dtype=jnp.uint32))

    def increment(self) -> None:
        self.count[...] += 1

    def __call__(self, x: jax.Array) -> jax.Array:
        self.increment()
        return x @ self.w[...]


def test_call_returns_the_output_and_the_changed_state_under_jit() -> None:
    model = Counter(3, 2, nnx.Rngs(0))
    pure: nnx.PureState[Counter] = nnx.split(model)

    @jit
    def forward(x: jax.Array, pure: nnx.PureState[Counter]) -> tuple[jax.Array, nnx.PureState[Counter]]:
        y, pure = nnx.call(pure)(x)
        return y, pure

    x = jnp.ones((1, 3))
    y, pure = forward(x, pure)
    y, pure = forward(x, pure)
    np.testing.assert_allclose(y, x @ model.w[...], rtol=1e-6)
    assert model.count[...] == 0  # the caller's module is untouched
    assert nnx.merge(*pure).count[...] == 2


def test_call_reaches_submodules_by_item_and_attribute() -> None:
    rngs = nnx.Rngs(0)
    nodes = {"a": Counter(3, 2, rngs), "b": Counter(2, 1, rngs)}
    _, pure = nnx.call(nnx.split(nodes))["b"].increment()
    merged = nnx.merge(*pure)
    assert merged["a"].count[...] == 0 and merged["b"].count[...] == 1

    class Holder(nnx.Module):
        def __init__(self) -> None:
            self.inner = Counter(2, 2, rngs)

    _, held = nnx.call(nnx.split(Holder())).inner.increment()
    assert nnx.merge(*held).inner.count[...] == 1


def test_call_refuses_something_other_than_a_split_pair() -> None:
    with pytest.raises(TypeError, match=r"nnx.call takes the \(GraphDef, State\) pair"):
        nnx.call(Counter(2, 2, nnx.Rngs(0)))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
