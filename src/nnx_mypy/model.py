"""Check-time view of a module class: its state fields and the leaves under them.

A field is what ``nnx.split`` would find at run time, read from declarations:
descriptor fields (recorded by ``record``), attributes annotated in the class
body, and attributes assigned in methods (mypy infers their types). A field
is classified by its type:

* a ``Variable`` kind (``Param[Array]``) or a descriptor field: a *leaf* of
  that kind, whose State value has the declared (inner) type;
* an array type: a leaf of no kind (a buffer);
* a Module class: a *submodule*, whose own fields continue the path;
* a container, another nnx Object, or a type not known yet: *opaque*
  (the path exists; what is below it is not checked);
* anything else: *static* (it lives in the GraphDef, not in the State).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Literal

from mypy.nodes import TypeInfo, Var
from mypy.maptype import map_instance_to_supertype
from mypy.types import AnyType, Instance, ProperType, TupleType, Type, TypeOfAny, UnionType, get_proper_type

from nnx_mypy import names
from nnx_mypy.record import is_subclass

Role = Literal["leaf", "module", "opaque", "static"]
Lookup = Callable[[str], "TypeInfo | None"]


@dataclass(frozen=True)
class Field:
    """One attribute of a module class as the State sees it."""

    name: str
    role: Role
    kind: TypeInfo | None = None  # the Variable kind of a leaf (None: a plain array)
    value_type: Type | None = None  # what the State holds at this path (a leaf's value)
    module: TypeInfo | None = None  # the class of a submodule

    def describe(self) -> str:
        """``w: Param`` / ``block: Block`` / ``cache: ?`` for messages."""
        if self.role == "leaf":
            return f"{self.name}: {self.kind.name if self.kind else 'array'}"
        if self.role == "module" and self.module is not None:
            return f"{self.name}: {self.module.name}"
        return f"{self.name}: ?"


def is_module(info: TypeInfo) -> bool:
    """A Module class (user modules, nnx layers)."""
    return is_subclass(info, names.MODULE_BASE)


def fields_of(info: TypeInfo, lookup: Lookup) -> dict[str, Field]:
    """The state and static fields of module class ``info``, base classes first."""
    out: dict[str, Field] = {}
    for klass in reversed(info.mro):
        if klass.fullname.startswith("nnx.") and klass.module_name in _CORE_MODULES:
            continue  # the framework's own attributes are not state
        declared = klass.metadata.get(names.METADATA_FIELDS, {}).get("fields", {})
        for name, symbol in klass.names.items():
            if name.startswith("__") or not isinstance(symbol.node, Var):
                continue
            var = symbol.node
            if var.is_property or (var.is_classvar and name not in declared):
                continue
            out[name] = _classify(name, var, declared.get(name), lookup)
        for name, spec in declared.items():  # sown in a method: no attribute symbol exists
            if spec.get("sown") and name not in out:
                spelled = str(spec.get("kind") or "")
                kind = lookup(spelled) or lookup(f"{spec.get('module')}.{spelled}")
                out[name] = Field(name, "leaf", kind, AnyType(TypeOfAny.special_form))
    return out


_CORE_MODULES = {"nnx.objects", "nnx.module", "nnx.compat"}
_CORE_MODULE_CLASSES = {names.MODULE_BASE, "nnx.compat.Module", names.OBJECT}


def _classify(name: str, var: Var, declared: dict[str, object] | None, lookup: Lookup) -> Field:
    if declared is not None:
        if declared.get("static"):
            return Field(name, "static")
        kind_name = declared.get("kind")
        kind = lookup(kind_name) if isinstance(kind_name, str) else None
        if kind is None:  # nnx.ref("collection"): the first kind declaring it
            kind = lookup(names.VARIABLE)
        return Field(name, "leaf", kind, var.type)
    if var.type is None:
        return Field(name, "opaque")
    return classify_type(name, get_proper_type(var.type))


def classify_type(name: str, typ: ProperType) -> Field:
    """The role of an attribute of type ``typ``."""
    if isinstance(typ, AnyType):
        return Field(name, "opaque")
    if isinstance(typ, UnionType):  # Optional submodules etc.: state if any member is
        roles = [classify_type(name, get_proper_type(t)) for t in typ.items]
        nodes = [f for f in roles if f.role != "static"]
        return nodes[0] if len(nodes) == 1 and len(roles) == 2 else Field(name, "opaque" if nodes else "static")
    if isinstance(typ, TupleType):
        return Field(name, "opaque" if any(_holds_state(get_proper_type(t)) for t in typ.items) else "static")
    if not isinstance(typ, Instance):
        return Field(name, "static")
    info = typ.type
    if is_subclass(info, names.VARIABLE):
        variable = map_instance_to_supertype(typ, info.mro[info.mro.index(_variable_info(info))])
        inner = variable.args[0] if variable.args else AnyType(TypeOfAny.special_form)
        return Field(name, "leaf", info, inner)
    if is_module(info):
        return Field(name, "module", module=info)
    if any(is_subclass(info, a) for a in names.ARRAY_TYPES):
        return Field(name, "leaf", None, typ)
    if is_subclass(info, names.OBJECT):
        return Field(name, "opaque")
    if info.fullname in names.CONTAINERS or any(is_subclass(info, c) for c in names.CONTAINERS):
        return Field(name, "opaque" if _holds_state(typ) else "static")
    return Field(name, "static")


def _variable_info(info: TypeInfo) -> TypeInfo:
    return next(k for k in info.mro if k.fullname == names.VARIABLE)


def _holds_state(typ: ProperType) -> bool:
    """Whether a value of this type may contain state (containers are looked into)."""
    if isinstance(typ, AnyType):
        return True
    if isinstance(typ, TupleType):
        return any(_holds_state(get_proper_type(t)) for t in typ.items)
    if isinstance(typ, UnionType):
        return any(_holds_state(get_proper_type(t)) for t in typ.items)
    if isinstance(typ, Instance):
        if typ.type.fullname in names.CONTAINERS or any(is_subclass(typ.type, c) for c in names.CONTAINERS):
            return any(_holds_state(get_proper_type(a)) for a in typ.args)
        return is_subclass(typ.type, names.OBJECT) or classify_type("", typ).role in ("leaf", "module")
    return False


@dataclass(frozen=True)
class Leaf:
    """A leaf the State of a module would hold, with its path and kind."""

    path: tuple[str, ...]
    kind: TypeInfo | None


def leaves(info: TypeInfo, lookup: Lookup) -> tuple[list[Leaf], bool]:
    """Every leaf below module class ``info`` and whether the list is complete
    (False when an opaque field may hold more)."""
    found: list[Leaf] = []
    complete = info.fullname not in _CORE_MODULE_CLASSES  # ``m: nnx.Module``: fields unknown
    for path, field in _walk(info, (), lookup, set()):
        if field.role == "leaf":
            found.append(Leaf(path, field.kind))
        elif field.role == "opaque":
            complete = False
    return found, complete


def _walk(info: TypeInfo, prefix: tuple[str, ...], lookup: Lookup, seen: set[str]) -> Iterator[tuple[tuple[str, ...], Field]]:
    if info.fullname in seen:  # a recursive module type: the static view stops here
        yield prefix, Field(prefix[-1] if prefix else "", "opaque")
        return
    seen = seen | {info.fullname}
    for name, field in sorted(fields_of(info, lookup).items()):
        path = (*prefix, name)
        if field.role == "module" and field.module is not None:
            yield from _walk(field.module, path, lookup, seen)
        else:
            yield path, field
