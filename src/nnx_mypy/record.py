"""Semantic-analysis hooks: record what each class declares, in the class's metadata.

mypy keeps ``TypeInfo.metadata`` in its incremental cache, so what is recorded
here is there for later runs too, when the class's source is not analysed
again. Only what the declaration alone tells is recorded:

* on a Module: the fields declared with ``nnx.param()``, ``nnx.batch_stat()``,
  ``nnx.variable(Kind)``, ``nnx.ref("collection")`` and ``nnx.static()``;
  every other attribute is classified later from its type;
* on a Variable kind: its collection name.
"""

from __future__ import annotations

import re
from typing import Any

from mypy.nodes import (
    AssignmentStmt,
    Block,
    CallExpr,
    Decorator,
    Expression,
    ExpressionStmt,
    FuncDef,
    IfStmt,
    MemberExpr,
    NameExpr,
    RefExpr,
    StrExpr,
    TryStmt,
    TypeInfo,
)
from mypy.plugin import ClassDefContext

from nnx_mypy import names


def snake_case(name: str) -> str:
    """The collection a kind gets from its class name (mirrors ``nnx.variables``)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def record_module(ctx: ClassDefContext) -> None:
    """Record the declared fields of a Module (or other nnx.Object) class."""
    fields: dict[str, dict[str, Any]] = {}
    for stmt in ctx.cls.defs.body:
        if not (isinstance(stmt, AssignmentStmt) and len(stmt.lvalues) == 1):
            continue
        target, value = stmt.lvalues[0], stmt.rvalue
        if not (isinstance(target, NameExpr) and isinstance(value, CallExpr) and isinstance(value.callee, RefExpr)):
            continue
        declarator = value.callee.fullname
        if declarator not in names.DECLARATORS:
            continue
        fields[target.name] = _declared(declarator, value)
    for stmt in ctx.cls.defs.body:
        method = stmt.func if isinstance(stmt, Decorator) else stmt
        if isinstance(method, FuncDef) and method.arguments:
            sown = _Sown(method.arguments[0].variable.name, ctx.api.cur_mod_id)
            sown.walk(method.body)
            for name, kind in sown.found.items():
                fields.setdefault(
                    name, {"static": False, "kind": kind, "collection": None, "sown": True, "module": ctx.api.cur_mod_id}
                )
    ctx.cls.info.metadata[names.METADATA_FIELDS] = {"fields": fields}


class _Sown:
    """Finds ``self.sow(Kind, "name", ...)`` statements: sowing creates a state field ``name``.

    (A plain statement walk: mypy's compiled visitor classes cannot be subclassed.)
    """

    def __init__(self, self_name: str, module: str) -> None:
        self.self_name = self_name
        self.module = module
        self.found: dict[str, str] = {}

    def walk(self, block: Block) -> None:
        for stmt in block.body:
            if isinstance(stmt, ExpressionStmt) and isinstance(stmt.expr, CallExpr):
                self._call(stmt.expr)
            for attr in ("body", "else_body", "finally_body"):
                inner = getattr(stmt, attr, None)
                if isinstance(inner, Block):
                    self.walk(inner)
            if isinstance(stmt, TryStmt):
                for handler in stmt.handlers:
                    self.walk(handler)
            if isinstance(stmt, IfStmt):
                for inner in stmt.body:
                    self.walk(inner)

    def _call(self, o: CallExpr) -> None:
        callee = o.callee
        if (
            isinstance(callee, MemberExpr)
            and callee.name == "sow"
            and isinstance(callee.expr, NameExpr)
            and callee.expr.name == self.self_name
            and len(o.args) >= 2
            and isinstance(o.args[0], RefExpr)
            and isinstance(o.args[1], StrExpr)
        ):
            self.found[o.args[1].value] = o.args[0].fullname or self._spelled(o.args[0])

    def _spelled(self, ref: RefExpr) -> str:
        # Method bodies may not be analysed yet: keep the spelling (``nnx.Intermediate``,
        # ``Count``); ``model.lookup_kind`` resolves it from this module's top level.
        if isinstance(ref, MemberExpr) and isinstance(ref.expr, RefExpr):
            return f"{ref.expr.fullname or self._spelled(ref.expr)}.{ref.name}"
        return ref.name if isinstance(ref, NameExpr) else ""


def _declared(declarator: str, call: CallExpr) -> dict[str, Any]:
    if declarator == "nnx.fields.static":
        return {"static": True}
    kind = names.DECLARATORS[declarator]
    first = call.args[0] if call.args else None
    if declarator == "nnx.fields.variable" and isinstance(first, RefExpr):
        kind = first.fullname
    if declarator == "nnx.fields.ref" and isinstance(first, StrExpr):
        return {"static": False, "kind": None, "collection": first.value}
    return {"static": False, "kind": kind, "collection": None}


def record_kind(ctx: ClassDefContext) -> None:
    """Record the collection name of a Variable kind (``collection=`` or the snake-cased name)."""
    info = ctx.cls.info
    keyword = ctx.cls.keywords.get("collection")
    collection = _string_value(keyword, ctx) if keyword is not None else None
    if collection is None:
        for stmt in ctx.cls.defs.body:  # ``collection = "counts"`` in the class body
            if (
                isinstance(stmt, AssignmentStmt)
                and any(isinstance(t, NameExpr) and t.name == "collection" for t in stmt.lvalues)
                and isinstance(stmt.rvalue, StrExpr)
            ):
                collection = stmt.rvalue.value
    info.metadata[names.METADATA_KIND] = {"collection": collection or snake_case(info.name)}


def _string_value(expr: Expression, ctx: ClassDefContext) -> str | None:
    """A string literal, or a name bound to one at the top of its module (``collection=COUNTS``)."""
    if isinstance(expr, StrExpr):
        return expr.value
    if not isinstance(expr, RefExpr) or not expr.fullname or "." not in expr.fullname:
        return None
    module_name, _, name = expr.fullname.rpartition(".")
    module = ctx.api.modules.get(module_name)
    for stmt in module.defs if module is not None else []:
        if (
            isinstance(stmt, AssignmentStmt)
            and any(isinstance(t, NameExpr) and t.name == name for t in stmt.lvalues)
            and isinstance(stmt.rvalue, StrExpr)
        ):
            return stmt.rvalue.value
    return None


def is_subclass(info: TypeInfo, fullname: str) -> bool:
    """``info`` is ``fullname`` or derives from it."""
    return info.fullname == fullname or info.has_base(fullname)
