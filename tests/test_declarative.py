"""@nnx.dataclass: the generated constructor at run time (typing: typecheck/pass/pass_dataclass.py)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


@nnx.dataclass
class Affine(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()
    name: str = nnx.static()
    scale: float = 1.0

    def __call__(self, x: jax.Array) -> jax.Array:
        return (x @ self.w + self.b) * self.scale


def test_generated_init_assigns_fields_in_declaration_order() -> None:
    layer = Affine(jnp.ones((2, 3)), jnp.zeros(3), "head")
    assert isinstance(nnx.cell(layer, "w"), nnx.Param)  # through the field: a Param cell
    assert layer.name == "head" and layer.scale == 1.0  # a plain class value is the default
    assert list(inspect.signature(Affine).parameters) == ["w", "b", "name", "scale"]
    np.testing.assert_allclose(layer(jnp.ones((1, 2))), 2.0)
    assert set(nnx.state(layer).paths) == {("w",), ("b",)}


def test_keywords_defaults_and_missing_arguments() -> None:
    layer = Affine(w=jnp.ones((1, 1)), b=jnp.zeros(1), name="n", scale=3.0)
    assert layer.scale == 3.0
    with pytest.raises(TypeError, match="missing a required argument: 'name'"):
        Affine(jnp.ones((1, 1)), jnp.zeros(1))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]  # under test


def test_subclass_fields_follow_the_base_and_post_init_runs() -> None:
    calls: list[str] = []

    @nnx.dataclass
    class Base(nnx.Module):
        w: jax.Array = nnx.param()
        name: str = nnx.static()

    @nnx.dataclass
    class Child(Base):
        mean: jax.Array = nnx.batch_stat()

        def __post_init__(self) -> None:
            calls.append(self.name)

    layer = Child(jnp.ones((1, 1)), "c", jnp.zeros(1))
    assert calls == ["c"]
    assert isinstance(nnx.cell(layer, "mean"), nnx.BatchStat)
    assert list(inspect.signature(Child).parameters) == ["w", "name", "mean"]


def test_a_class_with_its_own_init_is_refused() -> None:
    class Handwritten(nnx.Module):
        def __init__(self) -> None:
            self.w = nnx.Param(jnp.ones(1))

    with pytest.raises(TypeError, match="Handwritten defines its own __init__"):
        nnx.dataclass(Handwritten)
