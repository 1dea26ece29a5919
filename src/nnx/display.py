"""``nnx.display``: look at a model, a State or any graph node.

In a notebook with treescope installed (``pip install treescope``) the
object is shown as an interactive, foldable treescope tree, with arrays
summarised and shared nodes marked. Everywhere else (a terminal, a script,
no treescope) it prints the text tree that ``repr`` of a module gives: every
array as ``dtype[shape]``, every cell as ``Kind(dtype[shape], metadata)``, a
shared module or cell (or a cycle) written once and then referred to by path.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Literal

from nnx.containers import Dict, List
from nnx.markers import MARKS
from nnx.module import render
from nnx.objects import Object
from nnx.state import State
from nnx.variables import Variable

Backend = Literal["auto", "text", "treescope"]


def display(*objects: Any, backend: Backend = "auto") -> None:
    """Show each object: with treescope in a notebook, else as an indented text tree.

    ``backend="treescope"`` insists on treescope (an ImportError says how to
    install it; outside a notebook treescope's text rendering is printed);
    ``backend="text"`` always prints the text tree.
    """
    if backend not in ("auto", "text", "treescope"):
        raise ValueError(f"nnx.display: backend must be 'auto', 'text' or 'treescope', got {backend!r}.")
    use_treescope = backend == "treescope" or (backend == "auto" and _in_notebook() and _has_treescope())
    for obj in objects:
        if not use_treescope:
            print(text_tree(obj))
            continue
        treescope = require_treescope()
        if _in_notebook():
            treescope.display(obj)
        else:
            print(treescope.render_to_text(obj))


def text_tree(obj: Any) -> str:
    """The text rendering ``display`` prints: modules and containers as trees, else ``repr``."""
    if isinstance(obj, (Object, List, Dict)):
        return render(obj)
    return repr(obj)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell: Any = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _has_treescope() -> bool:
    try:
        require_treescope()
    except ImportError:
        return False
    return True


_registered: list[bool] = []


def require_treescope() -> Any:
    """The treescope module, with nnx's renderers registered; a clear ImportError if absent."""
    try:  # imported by name: treescope ships no type stubs, and every use goes through Any
        treescope = importlib.import_module("treescope")
        repr_lib = importlib.import_module("treescope.repr_lib")
        type_registries = importlib.import_module("treescope.type_registries")
    except ImportError:
        raise ImportError(
            "nnx.display with backend='treescope' needs the 'treescope' package: "
            "pip install treescope (or, in an nnx checkout, pip install -e '.[display]'). "
            "nnx.display(obj, backend='text') prints a text tree without it."
        ) from None
    if not _registered:
        registry: dict[type[Any], Any] = type_registries.TREESCOPE_HANDLER_REGISTRY
        registry[Object] = _object_handler(repr_lib)
        registry[Variable] = _variable_handler(repr_lib)
        registry[State] = _state_handler(repr_lib)
        _registered.append(True)
    return treescope


def _object_handler(repr_lib: Any) -> Any:
    def handle(node: Object, path: str | None, subtree_renderer: Any) -> Any:
        attributes = dict(sorted(kv for kv in node.__dict__.items() if kv[0] != MARKS))
        return repr_lib.render_object_constructor(type(node), attributes, path, subtree_renderer)

    return handle


def _variable_handler(repr_lib: Any) -> Any:
    def handle(cell: Variable[Any], path: str | None, subtree_renderer: Any) -> Any:
        attributes = {"value": cell.value, **cell.metadata}
        return repr_lib.render_object_constructor(type(cell), attributes, path, subtree_renderer)

    return handle


def _state_handler(repr_lib: Any) -> Any:
    def handle(state: State[Any], path: str | None, subtree_renderer: Any) -> Any:
        # Leaves are shown as cells of their kind (kinds live in the State's layout, not the values).
        shown: dict[Any, Any] = {}
        for key, value in state.items():
            kind = None if isinstance(value, State) else state.kind((key,))
            shown[key] = value if kind is None else kind(value, **state.metadata((key,)))
        return repr_lib.render_dictionary_wrapper(type(state), shown, path, subtree_renderer)

    return handle
