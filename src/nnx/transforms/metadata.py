"""``nnx.transform_metadata``: keep sharding names in step with an axis a transform adds.

A layer stack built with ``nnx.vmap`` has one more axis than each layer, and
its sharding metadata should say how that axis is split: a kernel named
``("din", "dout")`` inside the vmapped ``__init__`` is ``("layers", "din",
"dout")`` on the stack. Inside ``nnx.scan`` over the stack, each step sees one
layer again, whose names should again be ``("din", "dout")``.

``transform_metadata`` does exactly that bookkeeping, under the transform::

    @nnx.vmap(in_axes=0, out_axes=0)
    @nnx.transform_metadata(in_axes=0, out_axes=0, partition="layers")
    def init(rngs):
        return MLP(rngs)

On entry it removes ``partition`` at each mapped axis from the sharding names
of the Variables in the arguments (``in_axes``: an int, ``None``,
``nnx.Carry`` or ``nnx.StateAxes`` per argument, as for ``nnx.vmap``); on exit
it puts the name back into the arguments' Variables -- those the function
created included -- and adds it to the Variables of the output at
``out_axes``. The names are the ``sharding`` metadata (nnx's key) and
``out_sharding`` (Flax's). ``nnx.vmap(..., transform_metadata={nnx.PARTITION_NAME: "layers"})``
and the same keyword of ``nnx.scan`` apply it for you.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar, cast, overload

from nnx.graph import iter_graph
from nnx.modes import tree_for
from nnx.state import path_str
from nnx.transforms.axes import StateAxes, _CarryType, by_position
from nnx.transforms.lift import classify
from nnx.variables import Variable

F = TypeVar("F", bound=Callable[..., Any])

#: The key of ``transform_metadata={...}`` naming the mesh axis of the transform's axis.
PARTITION_NAME = "partition_name"

#: The metadata entries that hold one sharding name per array axis.
_SHARDING_KEYS = ("sharding", "out_sharding")

_WHERE = "nnx.transform_metadata"


@overload
def transform_metadata(
    f: F, /, *, in_axes: Any = 0, out_axes: Any = 0, partition: str | None, graph: bool | None = None
) -> F: ...
@overload
def transform_metadata(
    f: None = None, /, *, in_axes: Any = 0, out_axes: Any = 0, partition: str | None, graph: bool | None = None
) -> Callable[[F], F]: ...
def transform_metadata(
    f: F | None = None, /, *, in_axes: Any = 0, out_axes: Any = 0, partition: str | None, graph: bool | None = None
) -> F | Callable[[F], F]:
    """Remove ``partition`` from the sharding names of the arguments' Variables at their
    ``in_axes`` while ``f`` runs, and add it back (to the output's too, at ``out_axes``)
    afterwards; see the module docstring. ``graph=False``: tree mode (``nnx.modes``)."""
    tree_for(_WHERE, graph, None)  # checks graph= now, as the transforms do
    if f is None:
        return lambda fun: transform_metadata(fun, in_axes=in_axes, out_axes=out_axes, partition=partition, graph=graph)
    return with_axis_names(f, in_axes, out_axes, {PARTITION_NAME: partition})


def with_axis_names(f: F, in_axes: Any, out_axes: Any, metadata: Mapping[str, Any]) -> F:
    """``f`` with the bookkeeping of ``transform_metadata`` for ``metadata`` (a mapping
    holding ``PARTITION_NAME``; other keys name further per-axis metadata entries)."""
    if PARTITION_NAME not in metadata:
        raise ValueError(
            f"{_WHERE}: transform_metadata={dict(metadata)!r} has no {PARTITION_NAME!r} entry; give the mesh "
            f"axis of the transform's axis: {{nnx.PARTITION_NAME: 'layers'}}."
        )
    names = {key: metadata[PARTITION_NAME] for key in _SHARDING_KEYS}
    names.update({k: v for k, v in metadata.items() if k != PARTITION_NAME})

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = by_position(f, in_axes, args, kwargs)
        before = _mapped_cells(args, in_axes)
        removed = [(cell, _removed(cell, path, axis, names)) for cell, path, axis in before]
        for cell, entries in removed:  # all checked first: an error changes nothing
            cell.set_metadata({**cell.get_metadata(), **entries})
        try:
            out = f(*args, **kwargs)
        except BaseException:
            for cell, _, axis in before:
                _insert(cell, axis, names)
            raise
        done: set[int] = set()
        for cell, _, axis in _mapped_cells(args, in_axes) + _mapped_cells((out,), (out_axes,)):
            if id(cell) not in done:
                done.add(id(cell))
                _insert(cell, axis, names)
        return out

    return cast(F, wrapper)


def _mapped_cells(values: Sequence[Any], axes: Any) -> list[tuple[Variable[Any], str, int]]:
    """``(cell, path, axis)`` for each Variable in ``values`` that ``axes`` maps (an int axis)."""
    found: list[tuple[Variable[Any], str, int]] = []
    specs: Sequence[Any] = cast("Sequence[Any]", axes) if isinstance(axes, (tuple, list)) else [axes] * len(values)
    if len(specs) != len(values):
        raise ValueError(
            f"{_WHERE}: in_axes has {len(specs)} entries but the function was called with {len(values)} "
            "positional arguments; give one axis (int, None, nnx.Carry, nnx.StateAxes) per argument."
        )
    for k, (value, spec) in enumerate(zip(values, specs)):
        _collect(value, spec, f"args[{k}]", found)
    return found


def _collect(value: Any, spec: Any, where: str, found: list[tuple[Variable[Any], str, int]]) -> None:
    if spec is None or isinstance(spec, _CarryType):
        return
    if isinstance(spec, (tuple, list)) and isinstance(value, (tuple, list)):
        pairs = list(zip(cast("Sequence[Any]", value), cast("Sequence[Any]", spec), strict=False))
        for i, (v, s) in enumerate(pairs):
            _collect(v, s, f"{where}[{i}]", found)
        return
    if isinstance(spec, dict) and isinstance(value, dict):
        table: dict[Any, Any] = spec  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
        given: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        for key, v in given.items():
            _collect(v, table.get(key), f"{where}[{key!r}]", found)
        return
    if not (isinstance(spec, (int, StateAxes)) and not isinstance(spec, bool)):
        raise TypeError(f"{_WHERE}: the axis spec {spec!r} at {where} must be an int, None, nnx.Carry or nnx.StateAxes.")
    _, nodes, _ = classify(value)
    for node in nodes:
        for path, cell in iter_graph(node):
            if not isinstance(cell, Variable):
                continue
            axis = spec.axis_for(path, cell, _WHERE)[0] if isinstance(spec, StateAxes) else spec
            if isinstance(axis, int):
                variable: Variable[Any] = cell  # pyright: ignore[reportUnknownVariableType]  # narrowed from Any
                found.append((variable, f"{where}.{path_str(path)}" if path else where, axis))


def _per_axis(cell: Variable[Any], names: Mapping[str, Any]) -> Iterator[tuple[str, Any, tuple[Any, ...]]]:
    """``(key, name, axes)`` for each key of ``names`` whose metadata on ``cell`` is a
    non-empty tuple of per-axis names (other metadata is left alone)."""
    meta = cell.get_metadata()
    for key, name in names.items():
        axes: Any = meta.get(key)
        if isinstance(axes, tuple) and axes:
            yield key, name, axes


def _removed(cell: Variable[Any], path: str, axis: int, names: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata entries of ``cell`` with the name at ``axis`` removed (checked)."""
    entries: dict[str, Any] = {}
    for key, name, names_tuple in _per_axis(cell, names):
        if axis >= len(names_tuple) or names_tuple[axis] != name:
            raise ValueError(
                f"{_WHERE}: the {type(cell).__name__} at {path} has {key}={names_tuple!r}, but the transform maps "
                f"axis {axis}, which should be named {name!r}. Name that axis {name!r} where the Variable is made, "
                "or give transform_metadata the partition its axis has."
            )
        entries[key] = names_tuple[:axis] + names_tuple[axis + 1 :]
    return entries


def _insert(cell: Variable[Any], axis: int, names: Mapping[str, Any]) -> None:
    """Put each name at ``axis`` of the cell's per-axis metadata (padding with None)."""
    entries: dict[str, Any] = {}
    for key, name, known in _per_axis(cell, names):
        padded = list(known) + [None] * max(0, axis - len(known))
        padded.insert(axis, name)
        entries[key] = tuple(padded)
    if entries:
        cell.set_metadata(**entries)
