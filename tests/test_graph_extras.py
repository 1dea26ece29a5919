"""``nnx.clone(variables=, arrays=)``, ``nnx.iter_children`` and ``State == mapping``."""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx
from typed_jax import tree_map


def test_clone_shares_array_buffers_unless_arrays_is_set() -> None:
    m = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    shared, distinct = nnx.clone(m), nnx.clone(m, arrays=True)
    assert shared.kernel is not m.kernel and shared.kernel[...] is m.kernel[...]
    assert distinct.kernel is not m.kernel and distinct.kernel[...] is not m.kernel[...]
    np.testing.assert_array_equal(distinct.kernel[...], m.kernel[...])


def test_a_clone_with_its_own_arrays_can_be_donated_next_to_the_original() -> None:
    class Pair(nnx.Module):
        def __init__(self) -> None:
            self.linear = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
            self.copy = nnx.clone(self.linear, arrays=True)

    def bump(s: nnx.State) -> nnx.State:
        return tree_map(lambda x: x + 1, s)  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]  # leaves are Any

    donate = jax.jit(bump, donate_argnums=(0,))  # pyright: ignore[reportUnknownMemberType]  # jax: bare Callable
    out = cast(nnx.State, donate(nnx.state(Pair())))
    assert set(out) == {"copy", "linear"}


def test_clone_without_variables_shares_the_cells() -> None:
    m: Any = nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))  # Any: Sequential's layers are typed as callables
    copy = nnx.clone(m, variables=False)
    assert copy is not m and copy.layers is not m.layers and copy.layers[0] is not m.layers[0]
    assert copy.layers[0].kernel is m.layers[0].kernel
    with pytest.raises(ValueError, match="arrays=True .* variables=False"):
        nnx.clone(m, False, arrays=True)


def test_iter_children_yields_the_objects_one_level_down() -> None:
    class Block(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.layers = nnx.List([nnx.Linear(1, 1, rngs=rngs)])  # a container: not a child object
            self.linear = nnx.Linear(1, 1, rngs=rngs)
            self.dropout = nnx.Dropout(0.5, rngs=rngs)
            self.scale = nnx.Param(jnp.ones(1))  # a cell: not a child object

    block = Block(nnx.Rngs(0))
    assert [(k, type(v)) for k, v in nnx.iter_children(block)] == [("dropout", nnx.Dropout), ("linear", nnx.Linear)]
    assert [k for k, _ in nnx.iter_children(block.layers)] == [0]
    with pytest.raises(ValueError, match="tree mode"):
        shared = nnx.Sequential(block.linear, block.linear)
        list(nnx.iter_children(shared, graph=False))
    with pytest.raises(TypeError, match="got int"):
        list(nnx.iter_children(3))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def test_a_state_equals_a_nested_mapping_of_the_same_values() -> None:
    assert nnx.State({}) == {} and {} == nnx.State({})
    state = nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    assert state != {}
    as_dict = {"kernel": state["kernel"], "bias": state["bias"]}
    assert state == as_dict
    assert state != {"kernel": state["kernel"], "bias": state["bias"] + 1}
    assert state == {"kernel": nnx.Param(state["kernel"]), "bias": state["bias"]}  # a cell compares by value
    assert nnx.State({"a": 1}) != {("a",): 1}  # a key no State can have
