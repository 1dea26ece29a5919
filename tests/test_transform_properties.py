"""Property tests (hypothesis): nnx.jit on random module graphs behaves like eager Python.

The graphs come from ``test_properties.graphs`` (shared submodules and cells,
cycles, containers, several kinds, plain array attributes). Each property runs
the same function eagerly on a clone and through ``nnx.jit`` on the original,
and compares the two graphs with the independent walk ``analyze``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from hypothesis import given
from hypothesis import strategies as st

import nnx
from test_properties import SETTINGS, Case, analyze, assert_same_graph, graphs


def bump_every_leaf(root: Any) -> None:
    """Add one to every state leaf, in place (cells and plain array attributes)."""
    def plus_one(x: jax.Array) -> jax.Array:
        return x + 1

    nnx.update(root, jax.tree.map(plus_one, nnx.state(root)))


@SETTINGS
@given(case=graphs())
def test_jit_value_updates_equal_eager_and_keep_every_object(case: Case) -> None:
    eager = nnx.clone(case.root)
    bump_every_leaf(eager)
    before = analyze(case.root)
    nnx.jit(bump_every_leaf)(case.root)
    after = analyze(case.root)
    # Same objects at the same places: identity, sharing and cycles untouched.
    assert before.first == after.first
    assert_same_graph(after, analyze(eager))


def surgery(root: Any, name: str, shared_with: str | None) -> None:
    """Add a new Param attribute, optionally a second reference to an existing node."""
    setattr(root, name, nnx.Param(jnp.arange(3.0)))
    if shared_with is not None:
        setattr(root, shared_with, getattr(root, name))


@SETTINGS
@given(case=graphs(), name=st.sampled_from(["new", "a", "b"]), share=st.sampled_from([None, "alias"]))
def test_jit_structural_changes_equal_eager(case: Case, name: str, share: str | None) -> None:
    eager = nnx.clone(case.root)
    surgery(eager, name, share)
    kept = {id(m) for m in case.mods}
    nnx.jit(surgery, static_argnums=(1, 2))(case.root, name, share)
    assert_same_graph(analyze(case.root), analyze(eager))
    # Objects that are still reachable are the caller's own objects, not copies.
    reachable = {id(v) for v in analyze(case.root).objs.values() if isinstance(v, nnx.Module)}
    assert reachable <= kept


@SETTINGS
@given(case=graphs(), steps=st.integers(1, 3))
def test_repeated_jit_calls_accumulate_like_eager(case: Case, steps: int) -> None:
    eager = nnx.clone(case.root)
    step = nnx.jit(bump_every_leaf)
    for _ in range(steps):
        bump_every_leaf(eager)
        step(case.root)
    assert_same_graph(analyze(case.root), analyze(eager))
