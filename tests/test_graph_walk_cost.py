"""The mechanisms that keep the graph operations cheap must not change what they produce.

* The walk records paths as parent links and builds the tuples only when a
  Layout's paths are read: the paths must be exactly those of the graph.
* A compiled merge builder gives cells with equal metadata one shared dict:
  changing one cell's metadata must not reach any other cell.
* ``split`` trusts the shapes it last read while the cells hold exactly those
  values: a direct write in between must be seen, by split and by update.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx
from nnx.state import Layout


class Box(nnx.Module):
    def __init__(self, **children: Any) -> None:
        for name, child in children.items():
            setattr(self, name, child)


names = st.sampled_from(["a", "b", "w", "layers", "z0"])


def trees(depth: int) -> st.SearchStrategy[Any]:
    """A nested description: a leaf (a Param's length), a dict of named children, or a list."""
    leaf = st.integers(1, 3)
    if depth == 0:
        return leaf
    sub = trees(depth - 1)
    return st.one_of(
        leaf,
        st.dictionaries(names, sub, min_size=1, max_size=3),
        st.lists(sub, min_size=1, max_size=3),
    )


def build(spec: Any) -> Any:
    if isinstance(spec, int):
        return nnx.Param(jnp.zeros((spec,)))
    if isinstance(spec, dict):
        children: dict[str, Any] = spec  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
        return Box(**{k: build(v) for k, v in children.items()})
    return nnx.List([build(v) for v in spec])


def cell_paths(node: Any) -> set[tuple[Any, ...]]:
    return {path for path, value in nnx.iter_graph(node) if isinstance(value, nnx.Variable)}


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(names, trees(3), min_size=1, max_size=3))
def test_split_paths_are_the_graph_paths(spec: dict[str, Any]) -> None:
    model = build(spec)
    graphdef, state = nnx.split(model)
    assert set(state.paths) == cell_paths(model)
    assert len(state.paths) == len(set(state.paths)) == len(state.leaves)
    # The paths also survive a round trip through merge and a second split.
    assert nnx.split(nnx.merge(graphdef, state))[1].paths == state.paths


def test_a_split_builds_no_paths_until_they_are_read() -> None:
    link: Any = None
    for _ in range(300):
        link = Box(w=nnx.Param(jnp.zeros(())), child=link) if link is not None else Box(w=nnx.Param(jnp.zeros(())))
    graphdef, _ = nnx.split(link)
    layout: Layout = graphdef.layout
    assert layout._paths is None  # deferred: the d²/2 keys of a deep chain are not copied
    assert len(layout) == 300
    assert layout.paths[0] == ("child",) * 299 + ("w",)
    assert layout._paths is not None


def test_merged_cells_share_metadata_but_a_change_stays_in_its_cell() -> None:
    model = Box(a=nnx.Param(jnp.zeros(2), sharding=("x",)), b=nnx.Param(jnp.zeros(2), sharding=("x",)))
    graphdef, state = nnx.split(model)
    first = nnx.merge(graphdef, state)
    second = nnx.merge(graphdef, state)  # compiled builder: cells share metadata dicts
    third = nnx.merge(graphdef, state)
    for built in (first, second, third):
        assert nnx.cell(built, "a").get_metadata() == {"sharding": ("x",)}
    nnx.cell(second, "a").set_metadata(sharding=("y",))
    assert nnx.cell(second, "a").get_metadata("sharding") == ("y",)
    assert nnx.cell(second, "b").get_metadata("sharding") == ("x",)
    assert nnx.cell(third, "a").get_metadata("sharding") == ("x",)
    assert nnx.cell(nnx.merge(graphdef, state), "a").get_metadata("sharding") == ("x",)
    # The change is structural: the next split of that model sees it.
    assert nnx.split(second)[0] != graphdef


def test_merged_cells_without_metadata_stay_independent() -> None:
    model = Box(a=nnx.Param(jnp.zeros(2)), b=nnx.BatchStat(jnp.zeros(2)))
    graphdef, state = nnx.split(model)
    built = [nnx.merge(graphdef, state) for _ in range(3)]
    nnx.cell(built[1], "a").set_metadata(tag=1)
    assert [nnx.cell(m, "a").get_metadata() for m in built] == [{}, {"tag": 1}, {}]
    assert nnx.cell(built[1], "b").get_metadata() == {}


class Pair(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.arange(3.0), sharding=("x",))
        self.blocks = nnx.List([Box(b=nnx.BatchStat(jnp.ones(2)))])


def test_a_split_pickles_and_deep_copies_with_its_deferred_paths() -> None:
    model = Pair()
    graphdef, state = nnx.split(model)
    for copied_graphdef, copied_state in (
        pickle.loads(pickle.dumps((graphdef, state))),
        copy.deepcopy((graphdef, state)),
    ):
        assert copied_state.paths == (("blocks", 0, "b"), ("w",))
        assert copied_graphdef == graphdef
        rebuilt = nnx.merge(copied_graphdef, copied_state)
        assert isinstance(rebuilt, Pair)
        assert nnx.cell(rebuilt, "w").get_metadata("sharding") == ("x",)
        assert float(rebuilt.w[2]) == 2.0


class _One(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.ones((3,)))
        self.b = nnx.Param(jnp.zeros((3,)))


def _double(x: jax.Array) -> jax.Array:
    return x * 2


def test_update_reads_the_held_shapes_again_after_a_direct_write() -> None:
    """After split has remembered the values it read, a direct write of another shape
    is still refused by nnx.update, which reads the held shapes."""
    model = _One()
    _, state = nnx.split(model)  # the values split read are known now
    nnx.update(model, state)
    model.w.value = jnp.zeros((5,))  # another shape, written directly: not structural
    with pytest.raises(ValueError, match=r"'w' of _One has shape \(5,\) but the State holds shape \(3,\)"):
        nnx.update(model, state)
    assert model.w.value.shape == (5,)  # nothing was written
    nnx.update(model, nnx.state(model))  # the State of the new shapes fits
    doubled = jax.tree.map(_double, nnx.state(model))
    nnx.update(model, doubled)
    assert model.w.value.shape == (5,) and float(model.b.value.sum()) == 0.0


def test_split_records_the_shapes_of_a_direct_write() -> None:
    """split trusts the avals it last read only while the cells hold those very values."""
    model = _One()
    _, old = nnx.split(model)
    nnx.split(model)  # read again: the values are known now
    model.w.value = jnp.zeros((5,))
    graphdef, state = nnx.split(model)
    assert nnx.merge(graphdef, state).w.value.shape == (5,)
    with pytest.raises(ValueError, match=r"'w' of _One had shape \(5,\) when it was split"):
        nnx.merge(graphdef, old)  # the GraphDef records the new shape


def test_split_after_editing_its_state_and_writing_the_same_array() -> None:
    """A State split returned may be edited in place; the values split remembers are its own."""
    model = _One()
    _, state = nnx.split(model)
    nnx.split(model)
    wide = jnp.zeros((5,))
    state["w"] = wide  # the State split returned, edited ...
    model.w.value = wide  # ... and the same array written into the model
    graphdef, now = nnx.split(model)
    assert nnx.merge(graphdef, now).w.value.shape == (5,)
    with pytest.raises(ValueError, match=r"had shape \(5,\) when it was split"):
        nnx.merge(graphdef, nnx.State({"w": jnp.ones((3,)), "b": jnp.zeros((3,))}))
