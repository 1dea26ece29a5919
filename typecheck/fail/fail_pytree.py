"""The data/static marks keep the marked value's type: a mark does not hide a wrong one.

Each expected error is marked on its line.
"""

import jax
import jax.numpy as jnp

import nnx


@nnx.dataclass
class Point(nnx.Pytree):
    xy: jax.Array = nnx.data()
    label: str = nnx.static()


class Env(nnx.Pytree):
    def __init__(self) -> None:
        self.steps = nnx.data(0)


Point(jnp.ones(2))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
Point(jnp.ones(2), 3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
env = Env()
env.steps = nnx.data("many")  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]
count: str = nnx.static(3)  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
