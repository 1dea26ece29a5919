"""Flax 0.12's object-model functions on nnx models: iter_modules, find_duplicates, recursive_map,
with_attributes, to_pure_dict / to_flat_state / replace_by_pure_dict, nnx.data, PathContains(exact=),
Optimizer.update's return value and ModelAndOptimizer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_close, fnnx

import nnx


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 5, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=False)
        self.batch_norm = nnx.BatchNorm(5, use_running_average=False, rngs=rngs)


class Tied(Block):
    def __init__(self, rngs: nnx.Rngs) -> None:
        super().__init__(rngs)
        self.tied = nnx.cell(self.linear, "kernel")


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.block = Block(rngs)
        self.layers = [nnx.Linear(5, 5, rngs=rngs) for _ in range(2)]
        self.shared = self.block.linear


class FlaxBlock(fnnx.Module):  # type: ignore[misc]  # the same structure in Flax, as the reference
    def __init__(self, rngs: Any) -> None:
        self.linear = fnnx.Linear(2, 5, rngs=rngs)
        self.dropout = fnnx.Dropout(0.5, deterministic=False)
        self.batch_norm = fnnx.BatchNorm(5, use_running_average=False, rngs=rngs)


class FlaxModel(fnnx.Module):  # type: ignore[misc]
    def __init__(self, rngs: Any) -> None:
        self.block = FlaxBlock(rngs)
        self.layers = fnnx.List([fnnx.Linear(5, 5, rngs=rngs) for _ in range(2)])
        self.shared = self.block.linear


def test_iter_modules_visits_children_first_like_flax() -> None:
    ours = [(path, type(m).__name__) for path, m in nnx.iter_modules(Model(nnx.Rngs(0)))]
    theirs = [(path, type(m).__name__.removeprefix("Flax")) for path, m in fnnx.iter_modules(FlaxModel(fnnx.Rngs(0)))]
    # Flax's nnx.List is itself a Module; nnx's containers are not
    assert ours == [(path, name) for path, name in theirs if name != "List"]
    assert ours[-1] == ((), "Model")
    assert sum(1 for _, name in ours if name == "Linear") == 3  # the shared layer once


def test_find_duplicates_lists_every_path_of_shared_objects_like_flax() -> None:
    ours = nnx.find_duplicates(Model(nnx.Rngs(0)))
    assert ours == [[("block", "linear"), ("shared",)]]
    assert ours == [list(paths) for paths in fnnx.find_duplicates(FlaxModel(fnnx.Rngs(0)))]
    assert nnx.find_duplicates(Block(nnx.Rngs(0))) == []
    assert nnx.find_duplicates(Model(nnx.Rngs(0)), only=nnx.BatchNorm) == []


def test_find_duplicates_sees_shared_cells() -> None:
    assert [("linear", "kernel"), ("tied",)] in nnx.find_duplicates(Tied(nnx.Rngs(0)))


def test_recursive_map_replaces_bottom_up_on_a_copy() -> None:
    model = Model(nnx.Rngs(0))
    seen: list[tuple[Any, ...]] = []

    def swap(path: tuple[Any, ...], node: Any) -> Any:
        if isinstance(node, nnx.Module):
            seen.append(path)
        if isinstance(node, nnx.Linear) and node.in_features == 2:
            return nnx.LayerNorm(2, rngs=nnx.Rngs(1))
        return node

    new = nnx.recursive_map(swap, model)
    assert isinstance(new.block.linear, nnx.LayerNorm)
    assert new.shared is new.block.linear  # still shared after the swap
    assert isinstance(model.block.linear, nnx.Linear)  # the original is untouched
    assert nnx.cell(new.layers[0], "kernel") is nnx.cell(model.layers[0], "kernel")  # cells are shared, as in Flax
    assert seen.index(("block",)) > seen.index(("block", "linear")) and seen[-1] == ()


def test_with_attributes_sets_on_a_copy_and_filters() -> None:
    model = Model(nnx.Rngs(0))
    evaluated = nnx.with_attributes(model, deterministic=True, use_running_average=True)
    assert evaluated.block.dropout.deterministic and evaluated.block.batch_norm.use_running_average
    assert not model.block.dropout.deterministic and not model.block.batch_norm.use_running_average
    assert nnx.cell(evaluated.block.linear, "kernel") is nnx.cell(model.block.linear, "kernel")
    assert nnx.cell(evaluated.shared, "kernel") is nnx.cell(model.shared, "kernel")
    nnx.update(model.layers[0], nnx.State.from_flat_state({("kernel",): jnp.zeros((5, 5))}))
    assert float(jnp.abs(nnx.state(evaluated)["layers"][0]["kernel"]).sum()) == 0.0  # the copy follows the original
    only_dropout = nnx.with_attributes(model, only=nnx.Dropout, deterministic=True)
    assert only_dropout.block.dropout.deterministic and not only_dropout.block.batch_norm.use_running_average
    with pytest.raises(ValueError, match=r"Could not find at least one instance of the following attributes: \['detreministic'\]"):
        nnx.with_attributes(model, detreministic=True)
    assert nnx.with_attributes(model, detreministic=True, raise_if_not_found=False) is not model


def test_pure_dict_round_trip() -> None:
    model = Model(nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    pure = nnx.to_pure_dict(state)
    assert isinstance(pure["block"]["linear"]["kernel"], jax.Array)
    theirs = fnnx.to_pure_dict(fnnx.state(FlaxModel(fnnx.Rngs(0)), fnnx.Param))
    assert _keys(pure) == _keys(theirs)  # the same nesting and keys as Flax
    zeroed = jax.tree.map(jnp.zeros_like, pure)
    zeroed["layers"] = {str(k): v for k, v in zeroed["layers"].items()}  # as a JSON round trip leaves them
    nnx.replace_by_pure_dict(state, zeroed)
    nnx.update(model, state)
    assert float(jnp.abs(nnx.state(model)["layers"][1]["kernel"]).sum()) == 0.0


def _keys(tree: Any) -> Any:
    """The nesting and keys of a dict of dicts, leaves blanked."""
    if not isinstance(tree, dict):
        return None
    items: dict[Any, Any] = tree  # pyright: ignore[reportUnknownVariableType]
    return {k: _keys(v) for k, v in items.items()}


def test_replace_by_pure_dict_names_mismatched_paths() -> None:
    state = nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    before = np.asarray(state["kernel"])
    with pytest.raises(ValueError, match=r"missing \['bias'\], not in the state \['weight'\]"):
        nnx.replace_by_pure_dict(state, {"kernel": jnp.zeros((2, 3)), "weight": jnp.zeros(3)})
    assert_close(state["kernel"], before)  # nothing written


def test_to_flat_state_pairs_paths_with_cells() -> None:
    flat = nnx.to_flat_state(nnx.state(nnx.Linear(2, 3, rngs=nnx.Rngs(0))))
    assert [path for path, _ in flat] == [("bias",), ("kernel",)]
    assert all(isinstance(leaf, nnx.Param) for _, leaf in flat)
    assert flat.paths == [("bias",), ("kernel",)] and [leaf.shape for leaf in flat.leaves] == [(3,), (2, 3)]


def test_data_marks_are_unwrapped_by_module_assignment() -> None:
    value = jnp.ones(3)
    module = nnx.Module()
    module.a = nnx.data(value)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    module.b = nnx.data(None)  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    assert vars(module)["a"] is value and vars(module)["b"] is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["encoder", "enc", "decoder", "w", "0"]), min_size=1, max_size=4), st.booleans())
def test_path_contains_exact_matches_flax(path: list[str], exact: bool) -> None:
    ours = nnx.PathContains("enc", exact=exact)
    theirs = fnnx.PathContains("enc", exact=exact)
    assert ours(tuple(path), None) == theirs(tuple(path), None)


def test_optimizer_update_returns_the_updates_and_model_and_optimizer_holds_the_model() -> None:
    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    optimizer = nnx.ModelAndOptimizer(model, optax.sgd(0.5), wrt=nnx.Param)
    before = nnx.state(model, nnx.Param)
    grads = jax.tree.map(jnp.ones_like, before)
    updates = optimizer.update(grads)
    assert updates.paths == before.paths
    assert_close(updates["kernel"], -0.5 * jnp.ones((2, 1)))
    assert_close(nnx.state(model)["kernel"], before["kernel"] + updates["kernel"])
    assert optimizer.model is model and int(optimizer.step.value) == 1


def test_as_pure_replaces_cells_by_their_values_and_keeps_states_as_they_are() -> None:
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    pure = nnx.as_pure(params)
    assert isinstance(pure, nnx.State) and pure.paths == params.paths
    assert all(a is b for a, b in zip(pure.leaves, params.leaves))
    cells = {"w": model.kernel, "n": 3}
    plain = nnx.as_pure(cells)
    assert plain["w"] is model.kernel[...] and plain["n"] == 3
    assert not isinstance(plain["w"], nnx.Variable)
