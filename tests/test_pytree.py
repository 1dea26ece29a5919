"""nnx.Pytree: objects that are JAX pytrees and nnx graph objects at once; the data/static
marks (nnx.data, nnx.static, nnx.Data, nnx.Static) that decide which attributes JAX sees."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx
from typed_jax import jit, tree_map


class Env(nnx.Pytree):
    def __init__(self, n: int) -> None:
        self.position = jnp.zeros(n)
        self.name = "walker"
        self.steps = nnx.data(0)
        self.speed = nnx.Param(jnp.ones(n))


# jax types its tree functions loosely; these state the types once.
def leaves(tree: object) -> list[Any]:
    return jax.tree.leaves(tree)


def structure(tree: object) -> Any:
    return jax.tree.structure(tree)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def flatten(tree: object) -> tuple[list[Any], Any]:
    return jax.tree_util.tree_flatten(tree)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def unflatten(treedef: Any, values: list[Any]) -> Any:
    return jax.tree_util.tree_unflatten(treedef, values)  # pyright: ignore[reportUnknownMemberType]


def names_of_leaves(tree: object) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return [jax.tree_util.keystr(path) for path, _ in paths]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


# -- what is data ------------------------------------------------------------------


def test_arrays_variables_and_marked_values_are_children_and_the_rest_is_structure() -> None:
    env = Env(3)
    assert names_of_leaves(env) == [".position", ".speed.value", ".steps"]
    values, treedef = flatten(env)
    assert values[2] == 0
    rebuilt = unflatten(treedef, values)
    assert type(rebuilt) is Env and rebuilt.name == "walker" and isinstance(rebuilt.speed, nnx.Param)


def test_a_status_is_kept_until_a_mark_changes_it() -> None:
    class Foo(nnx.Pytree):
        def __init__(self) -> None:
            self.a: Any = nnx.data(1)
            self.b: Any = nnx.static(2)
            self.c: Any = jnp.array(3)

    foo = Foo()
    assert leaves(foo) == [1, 3]
    foo.a = "now a string"  # still data
    foo.b = 4  # still static
    assert leaves(foo) == ["now a string", 3]
    foo.a = nnx.static(5)
    foo.b = nnx.data(6)
    foo.c = nnx.static(7)
    assert leaves(foo) == [6]


def test_lists_and_dicts_of_data_are_seen_through() -> None:
    class Foo(nnx.Pytree):
        def __init__(self) -> None:
            self.layers = nnx.data([jnp.ones(1), {"w": jnp.zeros(2)}])
            self.more = nnx.List([jnp.ones(3)])

    foo = Foo()
    assert names_of_leaves(foo) == [".layers[0]", ".layers[1]['w']", ".more[0]"]
    def double(x: jax.Array) -> jax.Array:
        return x * 2

    doubled = tree_map(double, foo)
    assert isinstance(doubled.layers, nnx.List) and isinstance(doubled.layers[1], nnx.Dict)
    np.testing.assert_allclose(doubled.more[0], 2 * np.ones(3))


def test_registered_types_are_data() -> None:
    @nnx.register_data_type
    @dataclasses.dataclass(frozen=True)
    class Reading:
        value: float

    class Foo(nnx.Pytree):
        def __init__(self) -> None:
            self.reading = Reading(1.5)
            self.label = "x"

    assert nnx.is_data(Reading(0.0)) and not nnx.is_data("x") and not nnx.is_data([jnp.ones(1)])
    assert leaves(Foo()) == [Reading(1.5)]


# -- errors ------------------------------------------------------------------------


def test_data_assigned_to_a_static_attribute_is_refused_with_the_ways_out() -> None:
    class Foo(nnx.Pytree):
        def __init__(self) -> None:
            self.tags: list[Any] = ["a"]

    foo = Foo()
    with pytest.raises(ValueError, match="Found data on value of type 'list'") as info:
        foo.tags = ["a", jnp.ones(2)]
    message = str(info.value)
    assert "'Foo.tags'" in message and "jax.Array" in message
    assert "nnx.data(value)" in message and "nnx.List" in message and "pytree=False" in message
    assert foo.tags == ["a"]  # nothing changed


def test_a_new_plain_list_of_cells_is_refused() -> None:
    foo = nnx.Pytree()
    with pytest.raises(ValueError, match="Found data on value of type 'list', which holds a Variable"):
        foo.a = [nnx.Variable(1)]  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    assert "a" not in vars(foo)


def test_a_static_mark_on_data_is_refused_on_pytrees_and_modules() -> None:
    class Foo(nnx.Pytree):
        def __init__(self) -> None:
            self.a = nnx.static(jnp.array(1))

    with pytest.raises(ValueError, match="Found data in value of type 'jax.Array' marked nnx.static"):
        Foo()

    module = nnx.Module()
    with pytest.raises(ValueError, match=r"Found data in value of type 'tuple' \(it holds a Param\)"):
        module.a = nnx.static((nnx.Param(1),))  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    assert "a" not in vars(module)


def test_a_mark_inside_a_value_is_refused() -> None:
    foo = nnx.Pytree()
    with pytest.raises(ValueError, match=r"found nnx.data\(...\) inside a value of type 'list'"):
        foo.a = [nnx.data(1)]  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]


def test_class_level_static_declarations_refuse_data() -> None:
    @nnx.dataclass
    class Bar(nnx.Pytree):
        a: jax.Array = nnx.static()

    with pytest.raises(ValueError, match="Found unexpected data on value of type 'jax.Array' in static attribute 'Bar.a'"):
        Bar(a=jnp.array(3))


# -- declarations ------------------------------------------------------------------


def test_dataclass_fields_declare_data_and_static() -> None:
    @nnx.dataclass
    class Foo(nnx.Pytree):
        a: int = nnx.data()
        b: int = nnx.static()
        c: jax.Array
        d: int = nnx.data(default=4)
        e: str = nnx.static(default="e")

    foo = Foo(1, 2, jnp.array(3))
    assert leaves(foo) == [1, 3, 4] and foo.e == "e"
    assert foo.d == 4 and leaves(Foo(1, 2, jnp.array(3), 9))[-1] == 9


def test_annotations_declare_data_and_static_for_std_dataclasses() -> None:
    @dataclasses.dataclass
    class Foo(nnx.Pytree):
        a: nnx.Data[int]
        b: nnx.Static[int]
        c: jax.Array

    foo = Foo(a=1, b=2, c=jnp.array(3))
    assert leaves(foo) == [1, 3]

    class Sub(Foo):  # declarations are inherited
        pass

    assert leaves(Sub(a=5, b=6, c=jnp.array(7))) == [5, 7]


def test_data_fields_work_with_std_dataclasses() -> None:
    @dataclasses.dataclass
    class Foo(nnx.Pytree):
        a: int = nnx.data()
        b: int = nnx.data(default=3)

    assert leaves(Foo(1)) == [1, 3] and leaves(Foo(1, 7)) == [1, 7]
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
        Foo()  # checkers take `= nnx.data()` for a default here; at run time it has none


def test_frozen_dataclasses_settle_after_construction() -> None:
    @dataclasses.dataclass(frozen=True)
    class Point(nnx.Pytree):
        xy: jax.Array
        label: str
        items: list[Any]

    point = Point(jnp.ones(2), "p", [1, 2])
    assert isinstance(point.items, nnx.List)  # adopted as an assignment would
    assert names_of_leaves(point) == [".xy"]
    with pytest.raises(ValueError, match="Found data on value of type 'list'"):
        Point(jnp.ones(2), "p", [jnp.ones(1)])


def test_pytree_false_makes_a_graph_object_only_and_subclasses_inherit_it() -> None:
    class Plain(nnx.Pytree, pytree=False):
        def __init__(self) -> None:
            self.values = [jnp.ones(1)]  # no check: decided by value, like a module
            self.count = nnx.data(0)

    class Sub(Plain):
        pass

    for obj in (Plain(), Sub()):
        assert leaves(obj) == [obj]
        assert obj.count == 0 and list(nnx.state(obj).keys()) == ["values"]


def test_deleting_an_attribute_forgets_its_status() -> None:
    foo = nnx.Pytree()
    foo.a = nnx.data(1)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    del foo.a  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    foo.a = 2  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    assert leaves(foo) == []


def test_modules_take_marks_and_decide_by_value() -> None:
    class Block(nnx.Module):
        def __init__(self) -> None:
            self.count = nnx.data(1)
            self.layers = nnx.data([nnx.Linear(1, 1, rngs=nnx.Rngs(0))])
            self.name = nnx.static("block")

    block = Block()
    assert block.count == 1 and block.name == "block" and isinstance(block.layers, nnx.List)
    assert list(nnx.state(block).paths) == [("layers", 0, "bias"), ("layers", 0, "kernel")]


# -- JAX and nnx functions ---------------------------------------------------------------


def test_jax_jit_takes_and_returns_a_pytree() -> None:
    @jit
    def step(env: Env) -> Env:
        env.position = env.position + env.speed[...]
        env.steps = env.steps + 1
        return env

    env = step(step(Env(2)))
    np.testing.assert_allclose(env.position, [2.0, 2.0])
    assert int(env.steps) == 2 and env.name == "walker"


def test_split_merge_keeps_marks_sharing_and_leaves() -> None:
    class Pair(nnx.Pytree):
        def __init__(self) -> None:
            self.a = nnx.Param(jnp.ones(2))
            self.b = self.a
            self.n = nnx.data(3)

    pair = Pair()
    graphdef, state = nnx.split(pair)
    assert list(state.paths) == [("a",)]
    copy_ = nnx.merge(graphdef, state)
    assert copy_.a is copy_.b
    assert structure(copy_) == structure(pair)
    assert leaves(copy_)[-1] == 3


def test_deepcopy_keeps_marks() -> None:
    env = Env(2)
    assert structure(copy.deepcopy(env)) == structure(env)


def test_nnx_jit_updates_a_pytree_argument_in_place() -> None:
    env = Env(2)

    @nnx.jit
    def move(env: Env) -> None:
        env.speed[...] = env.speed[...] * 2

    move(env)
    np.testing.assert_allclose(env.speed[...], [2.0, 2.0])


def test_nnx_vmap_returns_pytrees_and_nnx_scan_carries_them() -> None:
    class Foo(nnx.Pytree):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.x = nnx.Param(rngs.normal((3,)))

    @nnx.split_rngs(splits=5)
    @nnx.vmap
    def create(rngs: nnx.Rngs) -> Foo:
        return Foo(rngs)

    foo = create(nnx.Rngs(0))
    assert foo.x.shape == (5, 3)

    class Carry(nnx.Pytree):
        def __init__(self) -> None:
            self.total = jnp.array(0.0)

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))
    def accumulate(carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        carry.total = carry.total + x.sum()
        return carry, x.sum()

    carry, sums = accumulate(Carry(), foo.x[...])
    np.testing.assert_allclose(carry.total, foo.x[...].sum(), rtol=1e-6)
    assert sums.shape == (5,)


# -- properties ----------------------------------------------------------------------

def _value(kind: str, i: int) -> Any:
    """An attribute value of ``kind``: two that are data by themselves, two that are not."""
    if kind == "array":
        return jnp.full((2,), float(i))
    if kind == "cell":
        return nnx.Param(jnp.full((1,), float(i)))
    return i if kind == "int" else f"s{i}"


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        st.tuples(st.sampled_from(["array", "cell", "int", "str"]), st.sampled_from(["none", "data", "static"])),
        max_size=6,
    )
)
def test_flatten_unflatten_and_split_merge_round_trip(attributes: dict[str, tuple[str, str]]) -> None:
    obj = nnx.Pytree()
    data: set[str] = set()
    for i, (name, (kind, mark)) in enumerate(sorted(attributes.items())):
        value = _value(kind, i)
        holds_data = kind in ("array", "cell")
        if mark == "static" and holds_data:
            with pytest.raises(ValueError, match="Found data in value of type"):
                setattr(obj, name, nnx.static(value))
            continue
        setattr(obj, name, {"none": value, "data": nnx.data(value), "static": nnx.static(value)}[mark])
        if mark == "data" or (mark == "none" and holds_data):
            data.add(name)
    names = names_of_leaves(obj)
    assert sorted({name.split(".")[1].split("[")[0] for name in names}) == sorted(data)
    values, treedef = flatten(obj)
    rebuilt: object = unflatten(treedef, values)
    assert structure(rebuilt) == treedef
    assert sorted(vars(rebuilt)) == sorted(vars(obj))
    merged = nnx.merge(*nnx.split(obj))
    assert structure(merged) == treedef
    for a, b in zip(values, leaves(merged)):
        assert np.array_equal(a, b)
