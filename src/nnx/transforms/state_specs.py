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
from nnx.graph import iter_graph
from nnx.state import Layout, State, path_str
from nnx.transforms.axes import StateAxes
from nnx.transforms.lift import Frame
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
    return [_spec_at(root_specs, int(path[0]), tuple(path[1:]), kind, tables, where) for path, kind in zip(layout.paths, layout.kinds)]


def _spec_at(root_specs: Sequence[Any], root: int, inner: tuple[Any, ...], kind: LeafKind, tables: dict[int, dict[Any, Any]], where: str) -> Any:
    """The spec root ``root``'s entry gives its leaf at ``inner``."""
    spec = root_specs[root] if root < len(root_specs) else None
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
    return spec


def check_shared_specs(frame: Frame, root_specs: Sequence[Any], specs: Sequence[Any], where: str) -> None:
    """A Variable reachable from two arguments must get one spec from both: the frame lists
    it once, under the first, so another argument's different spec would be dropped without
    a word. Only arguments with differing specs can disagree, so the walk runs only then."""
    if len(frame.roots) < 2 or all(s is root_specs[0] or s == root_specs[0] for s in root_specs):
        return
    paths = frame.framedef.graphdef.layout.paths
    first = {id(cell): (spec, path) for spec, path, cell in zip(specs, paths, frame.cells)}
    tables: dict[int, dict[Any, Any]] = {}
    for position, root in enumerate(frame.roots):
        for path, value in iter_graph(root):
            if id(value) not in first or not isinstance(value, Variable):
                continue
            cell: Variable[Any] = value  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
            spec = _spec_at(root_specs, position, tuple(path), type(cell), tables, where)
            kept, first_path = first[id(cell)]
            if spec != kept:
                here, there = path_str(tuple(path)), path_str(first_path[1:])
                raise ValueError(
                    f"{where}: Inconsistent aliasing detected: the same {type(cell).__name__} is argument "
                    f"{frame.owners[int(first_path[0])]} at '{there}' with spec {kept!r} and argument "
                    f"{frame.owners[position]} at '{here}' with spec {spec!r} ({there}: {kept!r}, {here}: {spec!r}). "
                    "A shared Variable has one layout; give both arguments the same spec for it, or pass it once."
                )


def filtered_spec(spec: StateAxes, path: tuple[Any, ...], kind: LeafKind, where: str) -> Any:
    """The entry a ``StateSharding`` (or ``StateAxes``) gives the leaf at ``path``."""
    if not isinstance(spec, StateSharding):
        spec = StateSharding(dict(zip(spec.filters, spec.axes)))
    return spec.spec_for(path, kind, where)
