"""``Marked``: a value on its way to an attribute, carrying "this is data" or "this is static".

``nnx.data(x)`` and ``nnx.static(x)`` return one. It lives only between the
call and the assignment: ``self.a = nnx.data(x)`` stores ``x`` itself, and the
object remembers the mark (``nnx.Pytree``) or checks it (``nnx.Module``, which
otherwise decides by value). A ``Marked`` anywhere else (inside a list, in an
arithmetic expression) is a mistake the assignment reports.
"""

from __future__ import annotations

from typing import Any

#: The instance ``__dict__`` entry where an ``nnx.Pytree`` records which attributes are
#: data. It lives among the attributes so that everything that copies a graph object
#: (``nnx.merge``, the transforms, ``copy.deepcopy``, pickling) carries it along.
MARKS = "_nnx_marks"


class Marked:
    """``value`` marked as data (``is_data``) or static, until it is assigned."""

    __slots__ = ("value", "is_data")

    def __init__(self, value: Any, is_data: bool) -> None:
        self.value = value
        self.is_data = is_data

    @property
    def spelling(self) -> str:
        """How the user wrote the mark: ``nnx.data(...)`` or ``nnx.static(...)``."""
        return "nnx.data(...)" if self.is_data else "nnx.static(...)"

    def __repr__(self) -> str:
        return f"{self.spelling[:-5]}({self.value!r})"
