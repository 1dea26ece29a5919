"""Calling a wrapped layer with some of its parameters replaced for the duration of one call.

``WeightNorm`` and ``SpectralNorm`` keep the wrapped layer's own parameters
as the trained values and compute the normalised weights from them on every
call; the layer sees the normalised weights only while it runs. Gradients
flow through the normalisation back to the stored parameters.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from nnx.filters import Key
from nnx.graph import iter_graph, state
from nnx.module import ModuleBase
from nnx.variables import Param

Path = tuple[Key, ...]


def path_key(path: Path) -> str:
    """A parameter path as one dict key: ``("layers", 0, "kernel")`` -> ``"layers/0/kernel"``."""
    return "/".join(str(part) for part in path)


def params_of(layer: ModuleBase) -> dict[Path, jax.Array]:
    """The ``Param`` values of ``layer`` by path."""
    params = state(layer, Param)
    return dict(zip(params.paths, params.leaves))


def param_cells(layer: ModuleBase) -> dict[Path, Param[Any]]:
    """The ``Param`` cells of ``layer`` by path (a shared cell at its first path)."""
    return {path: cell for path, cell in iter_graph(layer) if isinstance(cell, Param)}


def call_with(layer: ModuleBase, replaced: dict[Path, jax.Array], call: Callable[[], Any]) -> Any:
    """``call()`` while ``layer``'s parameters at the paths of ``replaced`` hold those values.

    The cells are written directly rather than through ``nnx.update``: the
    stand-in may have another dtype (``dtype=float16`` over a float32 kernel),
    which ``update`` refuses on purpose. The original values are written back
    afterwards (also when ``call`` raises), so the stored parameters stay the
    ones being trained.
    """
    if not replaced:
        return call()
    cells = param_cells(layer)
    original = {path: cells[path].get_raw_value() for path in replaced}
    try:
        for path, value in replaced.items():
            cells[path].set_raw_value(value)
        return call()
    finally:
        for path, value in original.items():
            cells[path].set_raw_value(value)
