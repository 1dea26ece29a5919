"""A split after a structural change re-walks only what changed (nnx.rewalk).

Each case changes a model whose walk is cached, then checks the split against
a full walk of the changed model, and, where the change leaves a big subtree
alone, that the subtree's description was copied rather than walked again
(the very same tuple).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import pytest

import nnx
from nnx import epoch
from walkcheck import assert_like_a_full_walk


class Block(nnx.Module):
    def __init__(self, width: int) -> None:
        self.w = nnx.Param(jnp.ones((width,)))
        self.b = nnx.Param(jnp.zeros((width,)))
        self.count = nnx.BatchStat(jnp.zeros(()))


class Model(nnx.Module):
    def __init__(self, n: int) -> None:
        self.layers = nnx.List([Block(i + 1) for i in range(n)])
        self.head = nnx.Param(jnp.ones((2,)))


def described(graphdef: nnx.GraphDef[Any], key: str) -> tuple[Any, ...]:
    """The description of the root's attribute ``key`` inside ``graphdef``."""
    tag, _, _, members = graphdef.node
    assert tag == "object"
    return dict(members)[key]  # type: ignore[no-any-return]


def test_a_change_at_the_root_copies_the_untouched_subtree() -> None:
    model = Model(6)
    before, _ = nnx.split(model)
    setattr(model, "tag", "new static")
    after = assert_like_a_full_walk(model)
    assert after != before
    assert described(after, "layers") is described(before, "layers")  # copied, not walked
    # and again, from the walk that copied it
    setattr(model, "tag", "another")
    again = assert_like_a_full_walk(model)
    assert described(again, "layers") is described(before, "layers")


def test_a_change_inside_the_subtree_is_seen() -> None:
    model = Model(6)
    nnx.split(model)
    setattr(model, "tag", 1)  # the next walk copies 'layers'
    nnx.split(model)
    setattr(model.layers[3], "extra", nnx.Param(jnp.ones((7,))))
    graphdef = assert_like_a_full_walk(model)
    assert ("layers", 3, "extra") in graphdef.layout.paths
    model.layers.append(Block(2))
    graphdef = assert_like_a_full_walk(model)
    assert ("layers", 6, "w") in graphdef.layout.paths
    model.layers[0].w.set_metadata(sharding=("data",))
    graphdef = assert_like_a_full_walk(model)
    assert graphdef.layout.metas[graphdef.layout.paths.index(("layers", 0, "w"))] != ()


def test_a_subtree_reached_by_another_path_gets_its_new_paths() -> None:
    model = Model(6)
    nnx.split(model)
    setattr(model, "layers2", model.layers)  # sorts after 'head' too: same index, new path
    del model.layers
    graphdef = assert_like_a_full_walk(model)
    assert ("layers2", 0, "w") in graphdef.layout.paths
    assert not any(p[0] == "layers" for p in graphdef.layout.paths)


def test_a_subtree_sharing_a_node_that_moved_is_walked_again() -> None:
    model = Model(6)
    setattr(model.layers[2], "shared", model.head)  # a reference back to 'head'
    nnx.split(model)
    model.head = nnx.Param(jnp.full((2,), 5.0))  # same count of nodes before 'layers', another cell
    graphdef = assert_like_a_full_walk(model)
    assert ("layers", 2, "shared") in graphdef.layout.paths  # the old head's first visit is here now
    rebuilt = nnx.merge(graphdef, nnx.state(model))
    assert rebuilt.layers[2].shared is not rebuilt.head
    assert float(rebuilt.head[0]) == 5.0 and float(rebuilt.layers[2].shared[0]) == 1.0


def test_new_leaves_before_the_subtree_shift_its_leaves() -> None:
    model = Model(6)
    nnx.split(model)
    setattr(model, "a_first", jnp.ones((3,)))  # a leaf before 'layers', but no node
    before = assert_like_a_full_walk(model)
    setattr(model, "tag", 2)  # the shifted span is reused again
    after = assert_like_a_full_walk(model)
    assert described(after, "layers") is described(before, "layers")
    _, state = nnx.split(model)
    assert state.leaves[0].shape == (3,)


def test_an_anonymous_change_walks_everything_again() -> None:
    model = Model(6)
    before, _ = nnx.split(model)
    model.layers.pop()
    epoch.bump()  # a change that names no node: nothing can be trusted to be unchanged
    after = assert_like_a_full_walk(model)
    assert len(after.layout.paths) == len(before.layout.paths) - 3


@pytest.mark.parametrize("depth", [50, 1500])
def test_a_deep_chain_changed_at_the_top(depth: int) -> None:
    class Link(nnx.Module):
        def __init__(self, child: Any) -> None:
            self.w = nnx.Param(jnp.zeros((1,)))
            self.child = child

    chain: Any = None
    for _ in range(depth):
        chain = Link(chain)
    before, _ = nnx.split(chain)
    chain.tag = 0
    after, state = nnx.split(chain)
    assert described(after, "child") is described(before, "child")
    assert len(state.leaves) == depth
    assert ("child",) * (depth - 1) + ("w",) in after.layout.paths
