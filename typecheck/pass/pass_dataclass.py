"""``@nnx.dataclass``: a generated, checked ``__init__`` for declarative modules."""

import jax
import jax.numpy as jnp
from typing_extensions import assert_type

import nnx


@nnx.dataclass
class Affine(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()
    name: str = nnx.static()

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


layer = Affine(jnp.ones((2, 2)), jnp.zeros(2), "head")
keywords = Affine(w=jnp.ones((2, 2)), b=jnp.zeros(2), name="tail")
assert_type(layer.w, jax.Array)
assert_type(layer.name, str)
assert_type(layer(jnp.ones((1, 2))), jax.Array)


class WithInit(nnx.Module):
    """A module with its own __init__ is untouched by the decorator it does not use."""

    w: jax.Array = nnx.param()

    def __init__(self, n: int) -> None:
        self.w = jnp.zeros((n,))


assert_type(WithInit(3).w, jax.Array)
