"""Plain ``list`` / ``dict`` roots for the graph functions.

Inside a module, assigning a list or dict stores an ``nnx.List`` / ``nnx.Dict``
copy (see ``nnx.containers``). A plain list or dict passed straight to
``nnx.split`` / ``state`` / ``graphdef`` / ``clone`` / ``update`` is taken the
same way: the walk sees the tracked copy, which holds the very same modules
and cells (only the containers are copied). So ``nnx.split([enc, dec])`` gives
a State with paths ``0.…`` and ``1.…``, and ``merge`` builds an ``nnx.List``
(a ``list``) around new modules.

A copy cannot take writes meant for the original, so ``update`` refuses a
plain array stored directly in a plain container (cells are shared and take
the write), and ``pop`` refuses plain roots altogether.
"""

from __future__ import annotations

from typing import Any, Sequence

from nnx.containers import adopt
from nnx.filters import Path
from nnx.state import path_str
from nnx.variables import Variable

#: The root types converted here (exact types: an ``nnx.List`` is walked as it is).
PLAIN: tuple[type, ...] = (list, dict)


def tracked(node: object) -> Any:
    """The ``nnx.List`` / ``nnx.Dict`` copy the walk sees for a plain container root."""
    return adopt(node)


def refuse_array_writes(node: Any, targets: Sequence[object], paths: Sequence[Path], where: str) -> None:
    """Raise if ``where`` would write a plain array into a copy of the plain ``node``."""
    for target, path in zip(targets, paths):
        if not isinstance(target, Variable):
            kind = type(node).__name__
            raise TypeError(
                f"{where}: '{path_str(path)}' is a plain array inside a plain {kind}, which cannot be "
                f"updated in place (only cells can); nothing was updated. Keep the {kind} in an "
                f"nnx.{kind.capitalize()} (node = nnx.{kind.capitalize()}(node)) or hold the array in a Variable."
            )


def refuse_pop(node: Any) -> None:
    """``nnx.pop`` removes entries from its root in place, which a copy cannot do."""
    kind = type(node).__name__
    raise TypeError(
        f"nnx.pop changes its root in place, and a plain {kind} is taken as a copy; nothing was "
        f"removed. Track it first: node = nnx.{kind.capitalize()}(node), then nnx.pop(node, ...)."
    )
