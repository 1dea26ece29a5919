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

from mypy.nodes import AssignmentStmt, CallExpr, NameExpr, RefExpr, StrExpr, TypeInfo
from mypy.plugin import ClassDefContext

from nnx.mypy_plugin import names


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
    ctx.cls.info.metadata[names.METADATA_FIELDS] = {"fields": fields}


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
    collection = keyword.value if isinstance(keyword, StrExpr) else None
    if collection is None:
        for stmt in ctx.cls.defs.body:  # ``collection = "counts"`` in the class body
            if (
                isinstance(stmt, AssignmentStmt)
                and any(isinstance(t, NameExpr) and t.name == "collection" for t in stmt.lvalues)
                and isinstance(stmt.rvalue, StrExpr)
            ):
                collection = stmt.rvalue.value
    info.metadata[names.METADATA_KIND] = {"collection": collection or snake_case(info.name)}


def is_subclass(info: TypeInfo, fullname: str) -> bool:
    """``info`` is ``fullname`` or derives from it."""
    return info.fullname == fullname or info.has_base(fullname)
