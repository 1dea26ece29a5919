"""Plain ``list`` / ``dict`` roots: split, state, graphdef, clone and update take them
as assigning them to a module attribute would (tracked copies around the same nodes)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnx
from test_properties import SETTINGS, Case, analyze, assert_same_graph, graphs


def test_split_of_a_list_of_modules_keys_the_state_by_position() -> None:
    rngs = nnx.Rngs(0)
    layers: list[Any] = [nnx.Linear(2, 2, rngs=rngs), nnx.BatchNorm(2, rngs=rngs)]
    graphdef, state = nnx.split(layers)
    assert state[0]["kernel"].shape == (2, 2)
    assert set(state[1]) == {"bias", "mean", "scale", "var"}
    assert nnx.state(layers) == state
    assert nnx.graphdef(layers) == graphdef
    rebuilt = nnx.merge(graphdef, state)
    assert isinstance(rebuilt, list) and len(rebuilt) == 2
    assert type(rebuilt[0]) is nnx.Linear and rebuilt[0] is not layers[0]
    np.testing.assert_array_equal(rebuilt[0].kernel[...], layers[0].kernel[...])


def test_a_cell_shared_inside_a_plain_list_stays_shared() -> None:
    v = nnx.Param(jnp.array(1))
    graphdef, state = nnx.split([v, v])
    assert state.paths == ((0,),)
    rebuilt = nnx.merge(graphdef, state)
    assert rebuilt[0] is rebuilt[1] and rebuilt[0] is not v


def test_plain_dicts_inside_a_plain_list_are_copied_per_place() -> None:
    a: dict[str, Any] = {"n": 1, "w": nnx.Param(jnp.array(2))}
    graphdef, state = nnx.split([a, 3, a])
    rebuilt: list[Any]
    rebuilt = nnx.merge(graphdef, state)
    # Like attribute assignment, each place gets its own tracked dict; the cell is one.
    assert rebuilt[0] is not rebuilt[2] and rebuilt[0]["w"] is rebuilt[2]["w"]
    assert rebuilt[0]["n"] == 1 and rebuilt[1] == 3


def test_tree_mode_refuses_sharing_in_a_plain_root() -> None:
    v = nnx.Param(jnp.array(1))
    for fn in (nnx.split, nnx.state, nnx.graphdef, nnx.clone):
        with pytest.raises(ValueError, match='same Param.*"0" and "1"'):
            fn([v, v], graph=False)


def test_a_dict_root_round_trips_with_plain_array_entries() -> None:
    d: dict[str, Any] = {"z": nnx.Param(jnp.array(1)), "a": jnp.array(2)}
    graphdef, state = nnx.split(d, graph=False)
    rebuilt = nnx.merge(graphdef, state)
    assert isinstance(rebuilt, dict) and set(rebuilt) == {"a", "z"}
    np.testing.assert_array_equal(rebuilt["a"], 2)
    assert rebuilt["z"][...] == 1


def test_clone_of_a_plain_list_copies_the_modules() -> None:
    layers = [nnx.Linear(2, 2, rngs=nnx.Rngs(0))]
    cloned = nnx.clone(layers)
    assert isinstance(cloned, list) and cloned[0] is not layers[0]
    assert cloned[0].kernel is not layers[0].kernel
    np.testing.assert_array_equal(cloned[0].kernel[...], layers[0].kernel[...])


def test_update_of_a_plain_root_writes_into_its_cells() -> None:
    layers = [nnx.Linear(2, 2, rngs=nnx.Rngs(0))]
    state = nnx.state(layers)
    zeros = jax.tree.map(jnp.zeros_like, state)
    nnx.update(layers, zeros)
    np.testing.assert_array_equal(layers[0].kernel[...], np.zeros((2, 2)))


def test_update_refuses_a_plain_array_in_a_plain_container_and_writes_nothing() -> None:
    d: dict[str, Any] = {"z": nnx.Param(jnp.array(1)), "a": jnp.array(2)}
    new = nnx.State({"z": jnp.array(5), "a": jnp.array(6)})
    with pytest.raises(TypeError, match=r"'a' is a plain array inside a plain dict.*nnx.Dict\(node\)"):
        nnx.update(d, new)
    assert d["z"][...] == 1 and int(d["a"]) == 2
    tracked = nnx.Dict(d)  # the fix the message names
    nnx.update(tracked, new)
    assert int(tracked["a"]) == 6 and d["z"][...] == 5  # the cell is shared with d


def test_pop_refuses_a_plain_root() -> None:
    d: dict[str, Any] = {"z": nnx.Param(jnp.array(1))}
    with pytest.raises(TypeError, match=r"plain dict.*nnx.Dict\(node\)"):
        nnx.pop(d, nnx.Param)
    assert "z" in d


def test_other_values_are_still_refused_as_roots() -> None:
    with pytest.raises(TypeError, match="got int"):
        nnx.split(42)


def test_tree_mode_checks_see_inside_a_plain_root() -> None:
    v = nnx.Param(jnp.array(1))
    with pytest.raises(ValueError, match='found at paths "0" and "1"'):
        nnx.recursive_map(lambda path, node: node, [v, v], graph=False)
    with pytest.raises(ValueError, match='found at paths "a.0" and "b"'):
        nnx.iter_graph({"a": [v], "b": v}, graph=False)


@SETTINGS
@given(case=graphs(), picks=st.lists(st.integers(0, 20), min_size=1, max_size=4), as_dict=st.booleans())
def test_a_plain_root_splits_as_the_tracked_container_of_the_same_nodes(
    case: Case, picks: list[int], as_dict: bool
) -> None:
    """For random graphs: a plain list/dict of modules splits exactly as the nnx.List/nnx.Dict
    holding them (sharing between the entries included), and merges to the same graph."""
    mods = [case.mods[i % len(case.mods)] for i in picks]
    plain: Any = {f"k{i}": m for i, m in enumerate(mods)} if as_dict else list(mods)
    tracked: Any = nnx.Dict(plain) if as_dict else nnx.List(plain)
    graphdef, state = nnx.split(plain)
    assert (graphdef, state) == tuple(nnx.split(tracked))
    assert nnx.state(plain) == state and nnx.graphdef(plain) == graphdef
    assert_same_graph(analyze(tracked), analyze(nnx.merge(graphdef, state)))
    assert_same_graph(analyze(tracked), analyze(nnx.clone(plain)))
