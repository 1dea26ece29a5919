"""``nnx.tabulate``: a table of a model's calls, shapes and state sizes.

``print(nnx.tabulate(model, x))`` runs ``model(x)`` abstractly (under
``jax.eval_shape``, on a copy: no FLOPs, no change to the model) while
recording every submodule call, and prints one row per call: the module's
path and type, the shapes of its inputs and outputs, and for every Variable
kind in its subtree the number of elements and bytes. The last row gives the
totals of the whole model, counting shared state once.

With ``rich`` installed (``pip install rich``) the table is drawn
by rich (``console_kwargs`` go to its ``Console``: ``width=``, ...); otherwise
as aligned plain text. ``compute_flops=True`` adds a ``flops`` column: the
floating-point operations XLA counts for each call on its own (lowered, not
run); ``compute_vjp_flops=True`` a ``vjp_flops`` column: those of the call's
forward and backward pass together (``jax.vjp``, pulled back from its output).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, cast

import jax
import numpy as np

from nnx.jaxapi import eval_shape, is_key_dtype, jit, key_data_spec, shape_dtype, tree_flatten, tree_map, tree_unflatten
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
    flops: str = ""
    vjp_flops: str = ""


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


def tabulate(
    model: Object,
    /,
    *inputs: Any,
    method: str = "__call__",
    depth: int | None = None,
    console_kwargs: Mapping[str, Any] | None = None,
    compute_flops: bool = False,
    compute_vjp_flops: bool = False,
    **kwargs: Any,
) -> str:
    """The call table of ``getattr(model, method)(*inputs, **kwargs)`` as a string.

    ``inputs`` may be arrays or ``jax.ShapeDtypeStruct``s; other values (flags)
    are passed through as they are. ``depth`` hides calls nested deeper than
    that many attribute levels. ``console_kwargs`` configure rich's
    ``Console`` (ignored for the plain-text table); ``compute_flops`` and
    ``compute_vjp_flops`` add the columns described in the module docstring.
    """
    if not isinstance(model, Object):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
        raise TypeError(f"nnx.tabulate: expected a module, got {type(model).__name__}.")
    if not callable(getattr(model, method, None)):
        raise AttributeError(f"nnx.tabulate: {type(model).__name__} has no method {method!r} to call.")
    costs = (compute_flops, compute_vjp_flops)
    calls = _record(model, method, inputs, kwargs, costs)
    sizes = {path: _Sizes.of(state_of(node)) for path, node in iter_submodules(model)}
    rows = [c for c in calls if depth is None or len(c.path) <= depth]
    console = dict(console_kwargs) if console_kwargs is not None else {}
    return _render_table(type(model).__name__, rows, sizes, _Sizes.of(state_of(model)), costs, console)


# -- recording calls -------------------------------------------------------------------


def _record(
    model: Object, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], costs: tuple[bool, bool]
) -> list[_Call]:
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
        with _patched({type(node) for _, node in modules}, method, paths, calls, costs):
            getattr(copy, method)(*call_inputs, **call_kwargs)

    eval_shape(run, st, [leaves[i] for i in dynamic])
    return calls


class _patched:
    """Wrap ``method`` of the given classes so each call on a known object is recorded."""

    def __init__(
        self,
        classes: set[type[Any]],
        method: str,
        paths: dict[int, tuple[Key, ...]],
        calls: list[_Call],
        costs: tuple[bool, bool] = (False, False),
    ) -> None:
        self.classes = [c for c in classes if callable(getattr(c, method, None))]
        self.method = method
        self.paths = paths
        self.calls = calls
        self.costs = costs
        self.measuring = False  # while a call's cost is lowered, its inner calls are not rows
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
            if self.measuring or path is None or (self.active and self.active[-1] == id(obj)):
                return original(obj, *args, **kwargs)
            call = _Call(path, type(obj).__name__, _format_args(args, kwargs))
            flops, vjp_flops = self.costs
            if flops or vjp_flops:
                self.measuring = True
                try:
                    call.flops = _flops(original, obj, args, kwargs, vjp=False) if flops else ""
                    call.vjp_flops = _flops(original, obj, args, kwargs, vjp=True) if vjp_flops else ""
                finally:
                    self.measuring = False
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


def _flops(original: Callable[..., Any], obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, vjp: bool) -> str:
    """XLA's FLOP count of ``original(obj, *args, **kwargs)`` as a pure function of ``obj``'s
    state and the array arguments (with ``vjp``: its forward and backward pass)."""
    graphdef, st = split(obj)
    leaves, treedef = tree_flatten((args, kwargs))
    dynamic = [i for i, x in enumerate(leaves) if isinstance(x, (jax.Array, np.ndarray))]

    def call(st: State[Any], arrays: list[Any]) -> Any:
        filled = list(leaves)
        for i, x in zip(dynamic, arrays):
            filled[i] = x
        call_args, call_kwargs = tree_unflatten(treedef, filled)
        return original(merge(graphdef, st), *call_args, **call_kwargs)

    def forward_and_back(st: State[Any], arrays: list[Any]) -> Any:
        vjp_fn: Any = getattr(jax, "vjp")  # jax.vjp's signature is partly untyped
        out, pullback = vjp_fn(call, st, arrays)
        return pullback(tree_map(_cotangent, out))

    abstract = tree_map(lambda x: shape_dtype(tuple(x.shape), x.dtype), (st, [leaves[i] for i in dynamic]))
    try:
        jitted: Any = jit(forward_and_back if vjp else call)
        cost: Any = jitted.lower(*abstract).cost_analysis()
    except Exception as error:  # an informational column: say why instead of failing the table
        return f"n/a ({type(error).__name__})"
    if isinstance(cost, list):  # older JAX: one dict per device
        cost = cast(list[Any], cost)[0] if cost else None  # type: ignore[redundant-cast]  # pyright sees list[Unknown]
    counts = cast(dict[str, Any], cost) if isinstance(cost, dict) else {}
    return f"{int(counts['flops']):,}" if "flops" in counts else "n/a"


def _cotangent(out: Any) -> Any:
    """The cotangent ``forward_and_back`` pulls back: the output itself where it is a float
    array (as Flax does), a zero of JAX's ``float0`` where it is not differentiable."""
    if jax.numpy.issubdtype(out.dtype, jax.numpy.inexact):
        return out
    return np.zeros(out.shape, jax.dtypes.float0)


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


def _render_table(
    title: str,
    calls: list[_Call],
    sizes: dict[tuple[Key, ...], _Sizes],
    total: _Sizes,
    costs: tuple[bool, bool] = (False, False),
    console_kwargs: dict[str, Any] | None = None,
) -> str:
    kinds = sorted(total.by_kind, key=_kind_order)
    extra = [name for name, wanted in zip(("flops", "vjp_flops"), costs) if wanted]
    header = ["path", "type", "inputs", "outputs", *extra, *kinds]

    def cost_cells(c: _Call) -> list[str]:
        return [c.flops if name == "flops" else c.vjp_flops for name in extra]

    body = [
        [path_str(c.path) if c.path else "", c.type_name, c.inputs, c.outputs, *cost_cells(c),
         *(_cell(sizes.get(c.path, _Sizes()), k) for k in kinds)]
        for c in calls
    ]  # fmt: skip
    footer = ["", "", "", "Total", *([""] * len(extra)), *(_cell(total, k) for k in kinds)]
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
    options: dict[str, Any] = {"width": max(120, sum(len(h) for h in header) * 2), "color_system": None}
    options.update(console_kwargs or {})
    Console(file=buffer, **options).print(table)
    return buffer.getvalue()


def _plain_table(title: str, header: list[str], body: list[list[str]], footer: list[str]) -> str:
    rows = [header, *body, footer]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return " | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([f"{title} summary", line(header), rule, *(line(r) for r in body), rule, line(footer)]) + "\n"
