"""Graph mode and tree mode: Flax 0.12's two switches, and what they mean in nnx.

nnx works in *graph mode*: a model is a graph, so a submodule or a Variable
may be reachable along two paths (weight tying, a shared encoder) or even
along a cycle, and ``split``/``merge`` and the transforms keep that sharing.

Flax 0.12 added *tree mode* for programs that promise their models are trees.
nnx gives it the same meaning: in tree mode every Variable, Module, ``nnx.List``
and ``nnx.Dict`` must be reachable along exactly one path, and a graph that
shares one raises a ``ValueError`` naming both paths. That check is the whole
difference. Tree mode is graph mode plus one walk that runs only when tree
mode is asked for, so there is one code path and the default (graph mode)
costs nothing extra.

Where the mode comes from, in order: the ``graph=`` argument of a call
(``nnx.split(m, graph=False)``, ``nnx.jit(f, graph=False)``), else the
innermost ``nnx.set_graph_mode(...)`` in force, else graph mode.
``nnx.compat`` holds the functions with ``graph=True`` fixed, for code that
must stay in graph mode whatever the switch says.

``graph_updates`` is Flax's second switch: whether a transform carries changes
of *structure* (new attributes, replaced submodules) back to the caller, on
top of new values. nnx's transforms always carry both back, so it is accepted
(``graph_updates=``, ``nnx.set_graph_updates``) and checked to be a bool, and
either setting runs the same code.

Both switches work three ways, as in Flax::

    nnx.set_graph_mode(False)           # from now on, in this thread / context
    with nnx.set_graph_mode(False): ... # for the block, then back
    @nnx.set_graph_mode(False)          # for every call of the function
    def f(): ...
"""

from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, ClassVar, Iterable, TypeVar, cast

from nnx.containers import Dict, List, adopt
from nnx.filters import Path
from nnx.objects import Object, node_items
from nnx.state import path_str
from nnx.variables import Variable

F = TypeVar("F", bound=Callable[..., Any])

_GRAPH_MODE: contextvars.ContextVar[bool] = contextvars.ContextVar("nnx_graph_mode", default=True)
_GRAPH_UPDATES: contextvars.ContextVar[bool] = contextvars.ContextVar("nnx_graph_updates", default=True)

#: Whether tree mode was ever switched on in this process. Until it is, a call without
#: ``graph=`` is in graph mode and the hot graph functions skip even the check's call:
#: ``if graph is not None or SWITCHED[0]: check_tree(...)``.
SWITCHED = [False]

#: What has an identity in the graph (and so can be shared); tuples and arrays are values.
_SHAREABLE = (Variable, Object, List, Dict)


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} takes True or False; got {value!r} ({type(value).__name__}).")
    return value


class _Switch:
    """A process setting that is also a context manager and a decorator (see the module docstring)."""

    _var: ClassVar[contextvars.ContextVar[bool]]
    _name: ClassVar[str]

    def __init__(self, value: bool, /) -> None:
        self._value = _check_bool(value, f"nnx.{self._name}")
        if not value and self._var is _GRAPH_MODE:
            SWITCHED[0] = True
        self._token: contextvars.Token[bool] | None = self._var.set(value)

    @classmethod
    def current_value(cls) -> bool:
        """The setting in force here (the innermost ``with`` block, else the last call, else True)."""
        return cls._var.get()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._token is not None:
            self._var.reset(self._token)
            self._token = None

    def __call__(self, fun: F) -> F:
        """As a decorator: undo the setting made by construction, and apply it around each call."""
        self._restore()
        var, value = self._var, self._value

        @functools.wraps(fun)
        def with_setting(*args: Any, **kwargs: Any) -> Any:
            token = var.set(value)
            try:
                return fun(*args, **kwargs)
            finally:
                var.reset(token)

        return cast(F, with_setting)  # functools.wraps keeps fun's signature


class set_graph_mode(_Switch):  # noqa: N801 - Flax's spelling: it reads as a function call
    """``nnx.set_graph_mode(False)``: tree mode (no sharing allowed) wherever ``graph=`` is not
    given; ``True`` restores graph mode, nnx's default. Also ``with`` and ``@`` (see ``nnx.modes``)."""

    _var = _GRAPH_MODE
    _name = "set_graph_mode"


class set_graph_updates(_Switch):  # noqa: N801
    """``nnx.set_graph_updates(flag)``: Flax's default for ``graph_updates=``. nnx's transforms
    carry value and structure updates back either way; the setting is kept for code that reads it."""

    _var = _GRAPH_UPDATES
    _name = "set_graph_updates"


def is_tree_mode(graph: bool | None) -> bool:
    """Whether a call given ``graph=`` runs in tree mode (``None``: the switch in force)."""
    if graph is None:
        return not _GRAPH_MODE.get()
    return not _check_bool(graph, "graph=")


def check_graph_updates(graph_updates: bool | None) -> None:
    """Refuse a ``graph_updates=`` that is not a bool or None (nnx carries all updates either way)."""
    if graph_updates is not None:
        _check_bool(graph_updates, "graph_updates=")


def check_tree(node: Any, graph: bool | None, where: str) -> None:
    """In tree mode, raise where ``node``'s graph shares something; in graph mode, nothing.

    The one line each graph function and transform calls: graph mode returns
    after one comparison.
    """
    if graph is True or (graph is None and _GRAPH_MODE.get()):
        return
    if graph is not None:
        _check_bool(graph, "graph=")
    if type(node) in (list, dict):  # a plain root is walked as the tracked copy the graph functions take
        node = adopt(node)
    ensure_tree([((), node)], where)


def ensure_tree(roots: Iterable[tuple[Path, Any]], where: str) -> None:
    """Raise ``ValueError`` if a Variable, Module or container is reachable along two paths.

    ``roots`` are ``(path, node)`` pairs walked as one graph (a transform's
    arguments), so a Variable passed twice is found too. The message names both
    paths and the two ways out.
    """
    seen: dict[int, Path] = {}
    stack: list[tuple[Path, Any]] = list(roots)[::-1]
    while stack:
        path, value = stack.pop()
        kind: type[Any] = type(value)  # pyright: ignore[reportUnknownVariableType]  # type() of Any
        if _shareable(kind):
            first = seen.get(id(value))
            if first is not None:
                raise ValueError(_shared_message(where, kind, first, path))
            seen[id(value)] = path
            if _is_cell(kind):
                continue
        elif kind is not tuple:
            continue
        stack.extend(((*path, k), v) for k, v in reversed(node_items(value)))


def _shareable(kind: type[Any]) -> bool:
    return issubclass(kind, _SHAREABLE)


def _is_cell(kind: type[Any]) -> bool:
    return issubclass(kind, Variable)


def _shared_message(where: str, kind: type[Any], first: Path, second: Path) -> str:
    what = f"{kind.__name__} (a Variable)" if _is_cell(kind) else kind.__name__
    cycle = " (a cycle: the second path runs through the first)" if second[: len(first)] == first else ""
    return (
        f"{where}: tree mode (graph=False) allows no shared references, but the same {what} "
        f'is found at paths "{path_str(first)}" and "{path_str(second)}"{cycle} (Duplicate {kind.__name__}). Either pass graph=True '
        "(as the nnx.compat spellings do; or nnx.set_graph_mode(True)) to keep the sharing, or give "
        "each path its own object (nnx.clone)."
    )


def tree_for(where: str, graph: bool | None, graph_updates: bool | None) -> str | None:
    """What a transform hands to ``Frame.of``: its name in tree mode (its arguments are then
    checked to share nothing), ``None`` in graph mode. Decided when the transform is made,
    as in Flax; a ``graph_updates=`` that is not a bool is refused here too."""
    check_graph_updates(graph_updates)
    return where if is_tree_mode(graph) else None
