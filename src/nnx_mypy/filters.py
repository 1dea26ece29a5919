"""Static evaluation of filter expressions.

A filter expression becomes a ``Static`` filter: a function from a leaf (its
path and Variable kind) to True/False, or None where the answer depends on
run-time values (predicates, ``nnx.PathContains`` on an int, ...). Invalid
filters and unknown collection strings are reported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mypy.nodes import (
    CallExpr,
    EllipsisExpr,
    Expression,
    FloatExpr,
    IntExpr,
    LambdaExpr,
    NameExpr,
    RefExpr,
    StarExpr,
    StrExpr,
    TupleExpr,
    TypeInfo,
)
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    LiteralType,
    Overloaded,
    ProperType,
    TupleType,
    TypeType,
    UnionType,
)

from nnx_mypy import names
from nnx_mypy.model import WILDCARD, Leaf
from nnx_mypy.record import is_subclass

#: leaf -> matches? (None: not known statically)
Match = Callable[[Leaf], "bool | None"]

VALID = (
    "use a Variable type (nnx.Param), a collection string such as \"params\", ..., "
    "a predicate (path, value) -> bool, a tuple of filters, or nnx.Not / nnx.All / "
    "nnx.Any / nnx.PathContains / nnx.buffers"
)


@dataclass
class Problem:
    """An invalid filter: what to say and where."""

    code: str  # "filter" or "collection"
    message: str
    node: Expression


class Evaluator:
    """Evaluates filter expressions; ``collections()`` gives kind infos by collection name."""

    def __init__(
        self,
        type_of: Callable[[Expression], ProperType],
        collections: Callable[[], dict[str, list[TypeInfo]]],
    ) -> None:
        self.type_of = type_of
        self.collections = collections
        self.problems: list[Problem] = []

    def evaluate(self, expr: Expression) -> Match:
        """The static meaning of filter ``expr`` (problems are collected in ``problems``)."""
        if isinstance(expr, EllipsisExpr):
            return _always(True)
        if isinstance(expr, NameExpr) and expr.fullname in ("builtins.True", "builtins.False"):
            return _always(expr.fullname == "builtins.True")
        if isinstance(expr, NameExpr) and expr.fullname == "builtins.None":
            return _always(False)  # Flax's spelling of "nothing"
        if isinstance(expr, StrExpr):
            return self._collection(expr.value, expr)
        if isinstance(expr, TupleExpr):
            return _any_of([self.evaluate(e) for e in expr.items])
        if isinstance(expr, RefExpr) and expr.fullname == names.BUFFERS:
            return lambda leaf: leaf.kind is None
        if isinstance(expr, RefExpr) and isinstance(expr.node, TypeInfo):
            return self._type(expr.node, expr)
        if isinstance(expr, CallExpr) and isinstance(expr.callee, RefExpr):
            combined = self._call(expr.callee.fullname, expr)
            if combined is not None:
                return combined
        if isinstance(expr, (LambdaExpr, StarExpr)):
            return _unknown  # a predicate; ``*filters`` forwarded
        return self._by_type(expr)

    # -- the forms ------------------------------------------------------
    def _collection(self, name: str, node: Expression) -> Match:
        kinds = self.collections().get(name)
        if not kinds:
            known = ", ".join(f'"{c}"' for c in sorted(self.collections()))
            self.problems.append(
                Problem(
                    "collection",
                    f'No Variable kind declares the collection "{name}"; known collections: {known} '
                    f'(declare one with `class MyKind(nnx.Variable, collection="{name}")`)',
                    node,
                )
            )
            return _unknown
        fullnames = {k.fullname for k in kinds}
        return lambda leaf: leaf.kind is not None and any(k.fullname in fullnames for k in leaf.kind.mro)

    def _type(self, info: TypeInfo, node: Expression) -> Match:
        if is_subclass(info, names.VARIABLE):
            return lambda leaf: leaf.kind is not None and is_subclass(leaf.kind, info.fullname)
        if is_subclass(info, names.FILTER_BASE) or info.fullname == "builtins.object":
            return _unknown
        # Any other type matches leaves whose value is an instance: arrays, at run time.
        return _unknown

    def _call(self, callee: str, call: CallExpr) -> Match | None:
        if callee not in (names.NOT, names.ALL, names.ANY, names.PATH_CONTAINS):
            return None
        parts = [self.evaluate(a) for a in call.args] if callee != names.PATH_CONTAINS else []
        if callee == names.NOT and len(parts) == 1:
            inner = parts[0]
            return lambda leaf: None if (m := inner(leaf)) is None else not m
        if callee == names.ANY:
            return _any_of(parts)
        if callee == names.ALL:
            return _all_of(parts)
        if callee == names.PATH_CONTAINS and len(call.args) == 1:
            key = call.args[0]
            if isinstance(key, (StrExpr, IntExpr)):
                wanted = key.value
                # WILDCARD: a container index or stream name that only the run time knows
                return lambda leaf: True if wanted in leaf.path else (None if WILDCARD in leaf.path else False)
        return None

    def _by_type(self, expr: Expression) -> Match:
        typ = self.type_of(expr)
        if isinstance(typ, (AnyType, UnionType)):
            return _unknown  # e.g. a parameter declared ``nnx.Filter``
        if isinstance(typ, TypeType) and isinstance(typ.item, Instance):
            return self._type(typ.item.type, expr)
        if isinstance(typ, (CallableType, Overloaded)):
            if typ.is_type_obj():
                return self._type(typ.type_object(), expr)
            return _unknown  # a predicate
        if isinstance(typ, Instance):
            info = typ.type
            if is_subclass(info, names.FILTER_BASE) or info.fullname in ("builtins.bool", "builtins.str"):
                return _unknown
            if typ.last_known_value is not None:
                value = typ.last_known_value.value
                if isinstance(value, str):
                    return self._collection(value, expr)
            if info.get("__call__") is not None and not is_subclass(info, names.VARIABLE):
                return _unknown  # a callable object used as a predicate
            if info.fullname == "builtins.tuple":
                return _unknown
        if isinstance(typ, TupleType):
            return _unknown
        self.problems.append(Problem("filter", f"{_show(expr, typ)} is not a filter; {VALID}", expr))
        return _unknown


def _show(expr: Expression, typ: ProperType) -> str:
    """``3 (int)``, ``2.5 (float)``, ``a Param instance``: the offending value for messages."""
    if isinstance(expr, (IntExpr, FloatExpr)):
        return f"{expr.value!r} ({type(expr.value).__name__})"
    if isinstance(typ, LiteralType):
        return f"{typ.value!r} ({type(typ.value).__name__})"
    if isinstance(typ, Instance) and typ.last_known_value is not None:
        value = typ.last_known_value.value
        return f"{value!r} ({type(value).__name__})"
    if isinstance(typ, Instance):
        return f"a {typ.type.name} instance"
    return str(typ)


def _always(value: bool) -> Match:
    return lambda leaf: value


def _unknown(leaf: Leaf) -> bool | None:
    return None


def _any_of(parts: list[Match]) -> Match:
    def match(leaf: Leaf) -> bool | None:
        answers = [p(leaf) for p in parts]
        return True if True in answers else (None if None in answers else False)

    return match


def _all_of(parts: list[Match]) -> Match:
    def match(leaf: Leaf) -> bool | None:
        answers = [p(leaf) for p in parts]
        return False if False in answers else (None if None in answers else True)

    return match
