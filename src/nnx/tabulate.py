"""``nnx.tabulate``: a table of a model's calls, shapes and state sizes.

``print(nnx.tabulate(model, x))`` runs ``model(x)`` abstractly (under
``jax.eval_shape``, on a copy: no FLOPs, no change to the model) while
recording every submodule call, and prints one row per call: the module's
path and type, the shapes of its inputs and outputs, and for every Variable
kind in its subtree the number of elements and bytes. The last row gives the
totals of the whole model, counting shared state once.

With ``rich`` installed (``pip install rich``) the table is drawn
by rich; otherwise as aligned plain text.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import numpy as np

from nnx.jaxapi import eval_shape, is_key_dtype, key_data_spec, tree_flatten, tree_unflatten
from nnx.graph import merge, split, state as state_of
from nnx.module import ModuleBase, describe_array
from nnx.objects import Key, Object, iter_submodules
from nnx.state import State, path_str


@dataclass
class _Call:
    path: tuple[Key, ...]
    type_name: str
    inputs: str
    outputs: str = ""


@dataclass
class _Sizes:
    """Elements and bytes per Variable kind name."""

    by_kind: dict[str, list[int]] = field(default_factory=dict[str, list[int]])

    @staticmethod
    def of(st: State[Any]) -> _Sizes:
        sizes = _Sizes()
        for kind, value in zip(st._layout.kinds, st.leaves):
            name = kind.__name__ if kind is not None else "array"
            entry = sizes.by_kind.setdefault(name, [0, 0])
            shape: tuple[int, ...] = tuple(value.shape)
            entry[0] += int(np.prod(shape))
            entry[1] += _nbytes(value)
        return sizes


def _nbytes(value: Any) -> int:
    shape: tuple[int, ...] = tuple(value.shape)
    size = int(np.prod(shape))
    dtype = value.dtype
    if is_key_dtype(dtype):  # a key array's bytes are its raw key data
        data = key_data_spec(shape, dtype)
        data_shape: tuple[int, ...] = tuple(data.shape)
        return int(np.prod(data_shape)) * int(np.dtype(data.dtype).itemsize)
    return size * int(np.dtype(dtype).itemsize)


def tabulate(model: Object, /, *inputs: Any, method: str = "__call__", depth: int | None = None, **kwargs: Any) -> str:
    """The call table of ``getattr(model, method)(*inputs, **kwargs)`` as a string.

    ``inputs`` may be arrays or ``jax.ShapeDtypeStruct``s; other values (flags)
    are passed through as they are. ``depth`` hides calls nested deeper than
    that many attribute levels.
    """
    if not isinstance(model, Object):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(f"nnx.tabulate: expected a module, got {type(model).__name__}.")
    if not callable(getattr(model, method, None)):
        raise AttributeError(f"nnx.tabulate: {type(model).__name__} has no method {method!r} to call.")
    calls = _record(model, method, inputs, kwargs)
    sizes = {path: _Sizes.of(state_of(node)) for path, node in iter_submodules(model)}
    rows = [c for c in calls if depth is None or len(c.path) <= depth]
    return _render_table(type(model).__name__, rows, sizes, _Sizes.of(state_of(model)))


# -- recording calls -------------------------------------------------------------------


def _record(model: Object, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> list[_Call]:
    graphdef, st = split(model)
    args = (inputs, kwargs)
    leaves, treedef = tree_flatten(args)
    dynamic = [i for i, x in enumerate(leaves) if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))]
    calls: list[_Call] = []

    def run(st: State[Any], dynamic_leaves: list[Any]) -> None:
        copy = merge(graphdef, st)
        filled = list(leaves)
        for i, x in zip(dynamic, dynamic_leaves):
            filled[i] = x
        call_inputs, call_kwargs = tree_unflatten(treedef, filled)
        modules = [(path, node) for path, node in iter_submodules(copy) if isinstance(node, ModuleBase)]
        paths = {id(node): path for path, node in modules}
        with _patched({type(node) for _, node in modules}, method, paths, calls):
            getattr(copy, method)(*call_inputs, **call_kwargs)

    eval_shape(run, st, [leaves[i] for i in dynamic])
    return calls


class _patched:
    """Wrap ``method`` of the given classes so each call on a known object is recorded."""

    def __init__(self, classes: set[type[Any]], method: str, paths: dict[int, tuple[Key, ...]], calls: list[_Call]) -> None:
        self.classes = [c for c in classes if callable(getattr(c, method, None))]
        self.method = method
        self.paths = paths
        self.calls = calls
        self.saved: list[tuple[type[Any], Any]] = []
        self.active: list[int] = []  # ids of objects whose call is running (a subclass calling super())

    def __enter__(self) -> None:
        for cls in self.classes:
            self.saved.append((cls, cls.__dict__.get(self.method, _ABSENT)))
            setattr(cls, self.method, self._wrap(getattr(cls, self.method)))

    def __exit__(self, *exc: object) -> None:
        for cls, original in reversed(self.saved):
            if original is _ABSENT:
                delattr(cls, self.method)
            else:
                setattr(cls, self.method, original)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(obj: Any, *args: Any, **kwargs: Any) -> Any:
            path = self.paths.get(id(obj))
            if path is None or (self.active and self.active[-1] == id(obj)):
                return original(obj, *args, **kwargs)
            call = _Call(path, type(obj).__name__, _format_args(args, kwargs))
            self.calls.append(call)
            self.active.append(id(obj))
            try:
                out = original(obj, *args, **kwargs)
            finally:
                self.active.pop()
            call.outputs = _format(out)
            return out

        return recorded


_ABSENT = object()


def _format(value: Any) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return describe_array(value)
    if isinstance(value, (tuple, list)):
        items: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]  # any sequence
        return "(" + ", ".join(_format(v) for v in items) + ")"
    if isinstance(value, dict):
        entries: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]  # any dict
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in entries.items()) + "}"
    return repr(value)


def _format_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_format(a) for a in args] + [f"{k}={_format(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


# -- rendering ------------------------------------------------------------------------


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _cell(sizes: _Sizes, kind: str) -> str:
    entry = sizes.by_kind.get(kind)
    return "" if entry is None else f"{entry[0]:,} ({_human_bytes(entry[1])})"


def _kind_order(name: str) -> tuple[int, str]:
    return (0, name) if name == "Param" else (1, name)


def _render_table(title: str, calls: list[_Call], sizes: dict[tuple[Key, ...], _Sizes], total: _Sizes) -> str:
    kinds = sorted(total.by_kind, key=_kind_order)
    header = ["path", "type", "inputs", "outputs", *kinds]
    body = [
        [path_str(c.path) if c.path else "", c.type_name, c.inputs, c.outputs, *(_cell(sizes.get(c.path, _Sizes()), k) for k in kinds)]
        for c in calls
    ]
    footer = ["", "", "", "Total", *(_cell(total, k) for k in kinds)]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return _plain_table(title, header, body, footer)
    table = Table(title=f"{title} summary", show_footer=True, show_lines=True)
    for i, name in enumerate(header):
        table.add_column(name, footer=footer[i], justify="right" if i >= 4 else "left")
    for row in body:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=max(120, sum(len(h) for h in header) * 2), color_system=None).print(table)
    return buffer.getvalue()


def _plain_table(title: str, header: list[str], body: list[list[str]], footer: list[str]) -> str:
    rows = [header, *body, footer]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return " | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([f"{title} summary", line(header), rule, *(line(r) for r in body), rule, line(footer)]) + "\n"
