"""``nnx.view``: a copy of a model in another mode (evaluation, decoding), and ``view_info``.

A module takes part by defining ``set_view(self, name=None, ...)``: keyword
parameters, each ``None`` by default meaning "leave as is". ``Dropout`` has
``set_view(deterministic=)``, ``BatchNorm`` ``set_view(use_running_average=)``,
``MultiHeadAttention`` ``set_view(deterministic=, decode=, batch_size=, max_length=)``.
``nnx.view(model, deterministic=True)`` copies the model (the copy shares the
original's cells, so it reads the trained weights) and calls ``set_view`` on
every chosen module with the keywords it declares. A keyword no chosen module
declares is an error: it is most likely misspelt.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from nnx.filters import Filter, to_filter
from nnx.modes import check_tree
from nnx.traversal import Path, recursive_map

N = TypeVar("N")

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _set_view_of(value: object) -> Callable[..., Any] | None:
    method = getattr(type(value), "set_view", None)
    return getattr(value, "set_view") if callable(method) else None


def _accepts(method: Callable[..., Any]) -> tuple[set[str], bool]:
    """The keyword names ``method`` declares, and whether it also takes ``**kwargs``."""
    parameters = inspect.signature(method).parameters.values()
    names = {p.name for p in parameters if p.kind in _NAMED}
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def view(
    node: N, /, *, only: Filter = ..., raise_if_not_found: bool = True, graph: bool | None = None, **options: Any
) -> N:
    """A copy of ``node`` whose modules' ``set_view`` got ``options`` (``deterministic=True``, ...).

    ``node`` is unchanged; the copy shares its cells. ``only`` (a filter, e.g.
    ``nnx.Dropout``) chooses the modules. Each chosen module with a
    ``set_view`` receives the options it declares (all of them if it takes
    ``**kwargs``). An option no chosen module declares raises ``ValueError``
    unless ``raise_if_not_found=False``. ``graph=False``: tree mode (``nnx.modes``), a
    shared module or cell raises.
    """
    check_tree(node, graph, "nnx.view")
    chosen = to_filter(only)
    unused = set(options)

    def apply(path: Path, value: Any) -> Any:
        method = _set_view_of(value)
        if method is None or not chosen(path, value):
            return value
        names, takes_any = _accepts(method)
        if takes_any:
            method(**options)
            unused.clear()
        else:
            method(**{k: v for k, v in options.items() if k in names})
            unused.difference_update(names)
        return value

    out = recursive_map(apply, node)
    if unused and raise_if_not_found:
        raise ValueError(
            f"Unused keys found in nnx.view: {sorted(unused)}; no chosen module of {type(node).__name__} "
            "declares them in its set_view. Check the spelling (nnx.view_info(model) lists the options), "
            "or pass raise_if_not_found=False."
        )
    return out


def view_info(node: Any, /, *, only: Filter = ..., graph: bool | None = None) -> str:
    """The options ``nnx.view`` accepts for ``node``: per module class with a ``set_view``
    (sorted by name), each keyword with its annotation, default and documentation.
    ``graph=False``: tree mode, as for ``nnx.view``."""
    check_tree(node, graph, "nnx.view_info")
    chosen = to_filter(only)
    classes: dict[str, type[Any]] = {}

    def collect(path: Path, value: object) -> object:
        if _set_view_of(value) is not None and chosen(path, value):
            kind: type[Any] = type(value)
            classes.setdefault(kind.__qualname__, kind)
        return value

    recursive_map(collect, node)
    lines: list[str] = []
    for name in sorted(classes):
        lines.append(f"{name}:")
        lines.extend(_describe(classes[name].set_view))
    return "\n".join(lines)


def _describe(method: Callable[..., Any]) -> list[str]:
    """``name: annotation = default`` and its ``Args:`` text for every option of ``method``;
    the bare signature when it has no docstring."""
    signature = inspect.signature(method)
    doc = inspect.getdoc(method)
    if doc is None:
        return [f"  set_view{signature}"]
    described = _documented_args(doc)
    lines: list[str] = []
    for p in signature.parameters.values():
        if p.name == "self" or p.kind not in _NAMED:
            continue
        default = "" if p.default is inspect.Parameter.empty else f" = {p.default}"
        lines.append(f"  {p.name}: {p.annotation}{default}")
        lines.extend(described.get(p.name, []))
    return lines


def _documented_args(doc: str) -> dict[str, list[str]]:
    """The ``Args:`` section of a Google-style docstring: each argument's description lines,
    indented by four spaces (continuation lines are written indented that far already)."""
    _, found, rest = doc.partition("Args:\n")
    if not found:
        return {}
    section = rest.split("Returns:\n", 1)[0]
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in section.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and ":" in line:
            name, _, text = line.strip().partition(":")
            current = out.setdefault(name.strip(), [])
            current.append("    " + text.strip())
        elif current is not None and line.strip():
            current.append(line.rstrip())
    return out
