"""``nnx.Pytree`` and the data/static marks: the marks return the marked value's type,
declarations read as their annotation, and a Pytree goes through JAX as itself."""

import dataclasses

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx


class Env(nnx.Pytree):
    def __init__(self, n: int) -> None:
        self.position = jnp.zeros(n)
        self.steps = nnx.data(0)
        self.name = nnx.static("walker")


env = Env(3)
assert_type(env.steps, int)
assert_type(env.name, str)
assert_type(nnx.data(jnp.ones(2)), jax.Array)


def marks_keep_types(names: tuple[str, ...]) -> None:
    assert_type(nnx.static(names), tuple[str, ...])


marks_keep_types(("a", "b"))


@nnx.dataclass
class Point(nnx.Pytree):
    xy: jax.Array = nnx.data()
    label: str = nnx.static()
    weight: float = nnx.data(default=1.0)


point = Point(jnp.ones(2), "origin")
assert_type(point.weight, float)
assert_type(Point(xy=jnp.zeros(2), label="p", weight=2.0).label, str)


@dataclasses.dataclass
class Reading(nnx.Pytree):
    value: nnx.Data[int]
    unit: nnx.Static[str]


reading = Reading(3, "m")
assert_type(reading.value, int)
assert_type(reading.unit, str)
assert jax.tree.leaves(reading) == [3]
