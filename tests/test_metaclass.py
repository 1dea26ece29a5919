"""``type(nnx.Module)``: the metaclass records declared fields and checks construction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import nnx


class Count(nnx.Variable[jax.Array]):
    pass


class Base(nnx.Module):
    w: jax.Array = nnx.param()
    n: int = nnx.static()

    def __init__(self) -> None:
        self.w = jnp.ones(2)
        self.n = 2


class Child(Base):
    mean: jax.Array = nnx.batch_stat()
    count: jax.Array = nnx.variable(Count)
    seen: jax.Array = nnx.variable(nnx.Intermediate)  # created while running: not required
    bias: jax.Array | None = nnx.param(default=None)  # optional: has a default

    def __init__(self) -> None:
        super().__init__()  # the check waits for the outermost __init__
        self.mean = jnp.zeros(2)
        self.count = jnp.array(0)


def test_the_metaclass_is_public_and_records_fields_with_inheritance() -> None:
    assert type(nnx.Module) is nnx.ObjectMeta
    assert isinstance(Child, nnx.ObjectMeta) and type(nnx.Rngs) is nnx.ObjectMeta
    assert Base.__nnx_node_fields__ == ("w",)
    assert Base.__nnx_static_fields__ == ("n",)
    assert set(Child.__nnx_node_fields__) == {"w", "mean", "count", "seen", "bias"}
    assert Child.__nnx_static_fields__ == ("n",)
    assert set(Child.__nnx_required__) == {"w", "mean", "count"}


def test_a_subclass_that_rebinds_a_field_drops_it() -> None:
    class Plain(Base):
        w = None  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

    assert Plain.__nnx_node_fields__ == ()
    assert Plain.__nnx_required__ == ()


def test_construction_that_assigns_every_required_field_passes() -> None:
    child = Child()
    assert child.bias is None  # the default, and no cell
    assert set(nnx.state(child).flat_state()) == {("w",), ("mean",), ("count",)}
    child.bias = jnp.zeros(2)  # the first assignment creates the cell
    assert isinstance(nnx.cell(child, "bias"), nnx.Param)


@pytest.mark.parametrize("missing", ["w", "mean", "count"])
def test_an_unassigned_state_field_names_class_field_and_fix(missing: str) -> None:
    class Forgetful(Child):
        def __init__(self) -> None:
            super().__init__()
            delattr(self, missing)

    with pytest.raises(TypeError) as info:
        Forgetful()
    message = str(info.value)
    assert f"Forgetful.{missing}" in message
    assert f"self.{missing} = ..." in message and "default=None" in message


def test_the_check_runs_after_the_outermost_init_only() -> None:
    class Late(Base):
        extra: jax.Array = nnx.param()

        def __init__(self) -> None:
            super().__init__()  # Base.__init__ returns before `extra` is assigned
            self.extra = jnp.ones(1)

    class Later(Late):
        def __init__(self) -> None:
            super().__init__()

    assert Later().extra.shape == (1,)


def test_merge_and_clone_rebuild_without_running_init() -> None:
    child = Child()
    graphdef, state = nnx.split(child)
    assert isinstance(nnx.merge(graphdef, state), Child)
    assert isinstance(nnx.clone(child), Child)


def test_dataclass_fields_with_a_default_are_optional_parameters() -> None:
    @nnx.dataclass
    class Affine(nnx.Module):
        w: jax.Array = nnx.param()
        b: jax.Array | None = nnx.param(default=None)

    assert Affine(jnp.ones(2)).b is None
    assert Affine(jnp.ones(2), jnp.zeros(2)).b is not None
    with pytest.raises(TypeError):
        Affine()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


def test_inspect_sees_each_class_constructor_not_the_metaclass_call() -> None:
    import inspect

    class Sized(nnx.Module):
        def __init__(self, n: int, *, scale: float = 1.0) -> None:
            self.w = nnx.Param(jnp.ones(n) * scale)

    assert list(inspect.signature(Sized).parameters) == ["n", "scale"]
    assert list(inspect.signature(Child).parameters) == []
