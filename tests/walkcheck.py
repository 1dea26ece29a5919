"""The check shared by the tests of cached and re-used walks: the split a model's
cached walk gives must be exactly what a full walk of the model gives now."""

from __future__ import annotations

from typing import Any

import nnx
from nnx import graph


def assert_like_a_full_walk(model: Any) -> nnx.GraphDef[Any]:
    """Compare the cached (or re-used) walk of ``model`` with a full walk: the same
    GraphDef, the same paths, kinds and metadata in the same order, and the very
    same cells (an array attribute's slot, by the array it reads). Returns the
    cached walk's GraphDef."""
    graphdef, cells = graph._walk_cached(model)
    full, full_cells = graph._walk(model)
    assert graphdef == full
    assert graphdef.layout.paths == full.layout.paths
    assert graphdef.layout.kinds == full.layout.kinds
    assert graphdef.layout.metas == full.layout.metas
    assert len(cells) == len(full_cells)
    for a, b in zip(cells, full_cells):
        assert a is b or (isinstance(a, graph._Slot) and a._value is b._value)
    return graphdef
