"""Per-leaf specs for a module argument: shardings and partition specs.

``nnx.jit(in_shardings=...)`` and ``nnx.shard_map(in_specs=...)`` take, for a
module argument, one of:

* one sharding / ``PartitionSpec`` for all of its state;
* ``nnx.StateSharding({filter: spec, ...})``: the spec of the first filter
  matching each leaf (as ``nnx.StateAxes`` does for axes);
* a ``State`` of specs with the module's own paths (``nnx.prefix(model, {...})``,
  or ``nnx.get_named_sharding``).

``leaf_specs`` turns such an entry per root into one spec per state leaf.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nnx.filters import Filter, LeafKind
from nnx.state import Layout, State, path_str
from nnx.transforms.axes import StateAxes
from nnx.variables import Variable


class StateSharding(StateAxes):
    """Per-kind shardings for a module argument:
    ``nnx.StateSharding({nnx.PathContains('kernel'): P(None, 'model'), ...: P()})``.

    Each leaf takes the spec of the first filter matching it; a leaf matching
    none is an error (end with ``...: spec``)."""

    def __init__(self, specs: Mapping[Filter, Any]) -> None:
        super().__init__(specs)

    def spec_for(self, path: tuple[Any, ...], kind: LeafKind, where: str) -> Any:
        """The spec of the leaf at ``path`` of kind ``kind`` (filters that read values see None)."""
        for f, spec in zip(self._compiled, self.axes):
            if f.matches(path, kind, None):
                return spec
        raise ValueError(
            f"{where}: no filter of {self!r} matches the state at '{path_str(path)}' "
            f"({kind.__name__ if kind else 'array'}). Add `...: spec` as the last entry."
        )

    def __repr__(self) -> str:
        return "StateSharding" + super().__repr__()[len("StateAxes") :]


def leaf_specs(layout: Layout, root_specs: Sequence[Any], where: str) -> list[Any]:
    """One spec per leaf of a frame's ``layout`` (paths start at the root's position),
    from one entry per root: a spec for all of its state, a ``StateSharding``/``StateAxes``,
    or a State of specs."""
    tables: dict[int, dict[Any, Any]] = {}
    out: list[Any] = []
    for path, kind in zip(layout.paths, layout.kinds):
        root = int(path[0])
        spec = root_specs[root] if root < len(root_specs) else None
        inner = tuple(path[1:])
        if isinstance(spec, State):
            table = tables.get(root)
            if table is None:
                table = tables[root] = dict(zip(spec.paths, spec.leaves))
            if inner not in table:
                raise ValueError(
                    f"{where}: the State of specs given for a module argument has no entry for its state at "
                    f"'{path_str(inner)}'; build it from the module itself: nnx.prefix(module, {{filter: spec}})."
                )
            spec = table[inner]
            if isinstance(spec, Variable):
                spec = spec._value
        elif isinstance(spec, StateAxes):
            spec = filtered_spec(spec, inner, kind, where)
        out.append(spec)
    return out


def filtered_spec(spec: StateAxes, path: tuple[Any, ...], kind: LeafKind, where: str) -> Any:
    """The entry a ``StateSharding`` (or ``StateAxes``) gives the leaf at ``path``."""
    if not isinstance(spec, StateSharding):
        spec = StateSharding(dict(zip(spec.filters, spec.axes)))
    return spec.spec_for(path, kind, where)
