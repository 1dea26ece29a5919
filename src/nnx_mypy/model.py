"""Check-time view of a module class: its state fields and the leaves under them.

A field is what ``nnx.split`` would find at run time, read from declarations:
descriptor fields (recorded by ``record``), attributes annotated in the class
body, and attributes assigned in methods (mypy infers their types). A field
is classified by its type:

* a ``Variable`` kind (``Param[Array]``) or a descriptor field: a *leaf* of
  that kind, whose State value has the declared (inner) type;
* an array type: a leaf of no kind (a buffer);
* a Module class: a *submodule*, whose own fields continue the path;
* an ``nnx.List`` / ``nnx.Dict`` / list / dict / tuple whose entries are all
  of one Module class: *items* (``state.blocks[0].kernel`` is checked);
* an ``nnx.Rngs``: *rngs* (leaves of known kinds, ``RngKey`` and ``RngCount``,
  under stream names that only the run time knows); an ``nnx.RngStream``:
  *stream* (its ``key`` and ``count``);
* another container, another nnx Object, ``Any``, a TypeVar, a Protocol, or
  ``nnx.Module`` itself: *opaque* (the path exists; what is below it is not
  checked, and only checks that need the whole model switch off);
* anything else: *static* (it lives in the GraphDef, not in the State).

The library's own classes (``nnx.*``) declare all their state, so there an
attribute of an unknown type (``dtype: Dtype``, an alias of ``Any``) is static.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Literal

from mypy.nodes import TypeInfo, Var
from mypy.maptype import map_instance_to_supertype
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    ProperType,
    TupleType,
    Type,
    TypeOfAny,
    TypeVarType,
    UnionType,
    get_proper_type,
)

from nnx_mypy import names
from nnx_mypy.record import is_subclass

Role = Literal["leaf", "module", "items", "rngs", "stream", "opaque", "static"]
Lookup = Callable[[str], "TypeInfo | None"]


@dataclass(frozen=True)
class Field:
    """One attribute of a module class as the State sees it."""

    name: str
    role: Role
    kind: TypeInfo | None = None  # the Variable kind of a leaf (None: a plain array)
    value_type: Type | None = None  # what the State holds at this path (a leaf's value)
    module: TypeInfo | None = None  # the class of a submodule, or of every entry of ``items``

    def describe(self) -> str:
        """``w: Param`` / ``block: Block`` / ``cache: ?`` for messages."""
        if self.role == "leaf":
            return f"{self.name}: {self.kind.name if self.kind else 'array'}"
        if self.role == "module" and self.module is not None:
            return f"{self.name}: {self.module.name}"
        if self.role == "items" and self.module is not None:
            return f"{self.name}: [{self.module.name}]"
        if self.role == "rngs":
            return f"{self.name}: Rngs"
        if self.role == "stream":
            return f"{self.name}: RngStream"
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
        library = klass.module_name.startswith("nnx.")
        declared = klass.metadata.get(names.METADATA_FIELDS, {}).get("fields", {})
        for name, symbol in klass.names.items():
            if name.startswith("__") or not isinstance(symbol.node, Var):
                continue
            var = symbol.node
            if var.is_property or (var.is_classvar and name not in declared):
                continue
            found = _classify(name, var, declared.get(name), lookup)
            if library and found.role == "opaque" and not _holds_known_state(var.type):
                found = Field(name, "static")  # a library layer declares its state; the rest is static
            out[name] = found
        for name, spec in declared.items():  # sown in a method: no attribute symbol exists
            if spec.get("sown") and name not in out:
                spelled = str(spec.get("kind") or "")
                kind = lookup(spelled) or lookup(f"{spec.get('module')}.{spelled}")
                out[name] = Field(name, "leaf", kind, AnyType(TypeOfAny.special_form))
    return out


_CORE_MODULES = {"nnx.objects", "nnx.module", "nnx.seed_compat"}
_CORE_MODULE_CLASSES = {names.MODULE_BASE, "nnx.seed_compat.Module", names.OBJECT}


def _classify(name: str, var: Var, declared: dict[str, object] | None, lookup: Lookup) -> Field:
    if declared is not None:
        if declared.get("static"):
            return Field(name, "static")
        kind_name = declared.get("kind")
        kind = lookup(kind_name) if isinstance(kind_name, str) else None
        collection = declared.get("collection")
        if kind is None and isinstance(collection, str):  # nnx.ref("params"): the kind it resolves to
            kind = lookup(names.COLLECTION_PREFIX + collection)
        if kind is None:
            return Field(name, "opaque")  # a kind we cannot resolve: any filter may take it
        return Field(name, "leaf", kind, var.type)
    if var.type is None:
        return Field(name, "opaque")
    return classify_type(name, get_proper_type(var.type))


def classify_type(name: str, typ: ProperType, depth: int = 0) -> Field:
    """The role of an attribute of type ``typ`` (``depth``: how far inside containers we are)."""
    if isinstance(typ, AnyType) or depth > _MAX_DEPTH:  # a recursive alias (``Filter``) ends here
        return Field(name, "opaque")
    if isinstance(typ, TypeVarType):
        default = get_proper_type(typ.default)
        if not isinstance(default, AnyType):  # PEP 696 default: the kind a plain use gets (LoRA's LoRAParam)
            return classify_type(name, default, depth + 1)
        # a generic module's submodule: any subclass of the bound
        return Field(name, "opaque" if _holds_state(get_proper_type(typ.upper_bound)) else "static")
    if isinstance(typ, UnionType):  # Optional submodules etc.: state if any member is
        roles = [classify_type(name, get_proper_type(t), depth + 1) for t in typ.items]
        nodes = [f for f in roles if f.role != "static"]
        return nodes[0] if len(nodes) == 1 and len(roles) == 2 else Field(name, "opaque" if nodes else "static")
    if isinstance(typ, TupleType):
        return _items(name, [get_proper_type(t) for t in typ.items], depth)
    if not isinstance(typ, Instance):
        return Field(name, "static")
    info = typ.type
    if is_subclass(info, names.VARIABLE):
        variable = map_instance_to_supertype(typ, info.mro[info.mro.index(_variable_info(info))])
        inner = variable.args[0] if variable.args else AnyType(TypeOfAny.special_form)
        return Field(name, "leaf", info, inner)
    if info.fullname in _CORE_MODULE_CLASSES or info.is_protocol or info.fullname == "builtins.object":
        return Field(name, "opaque")  # ``backbone: nnx.Module`` / a Protocol: any module may be there
    if is_module(info):
        return Field(name, "module", module=info)
    if any(is_subclass(info, a) for a in names.ARRAY_TYPES):
        return Field(name, "leaf", None, typ)
    if is_subclass(info, names.RNGS):
        return Field(name, "rngs")
    if is_subclass(info, names.RNG_STREAM):
        return Field(name, "stream")
    if is_subclass(info, names.OBJECT):
        return Field(name, "opaque")
    if info.fullname in names.CONTAINERS or any(is_subclass(info, c) for c in names.CONTAINERS):
        if not _holds_state(typ):
            return Field(name, "static")
        entries = typ.args[-1:] if is_subclass(info, "builtins.dict") else typ.args[:1]
        return _items(name, [get_proper_type(t) for t in entries], depth)
    return Field(name, "static")


def _items(name: str, entries: list[ProperType], depth: int) -> Field:
    """A container: ``items`` when every entry is of one Module class, else opaque or static."""
    if not any(_holds_state(t, depth + 1) for t in entries):
        return Field(name, "static")
    roles = [classify_type(name, t, depth + 1) for t in entries]
    modules = {f.module.fullname: f.module for f in roles if f.role == "module" and f.module is not None}
    if len(modules) == 1 and all(f.role == "module" for f in roles):
        return Field(name, "items", module=next(iter(modules.values())))
    return Field(name, "opaque")


def _variable_info(info: TypeInfo) -> TypeInfo:
    return next(k for k in info.mro if k.fullname == names.VARIABLE)


def _holds_state(typ: ProperType | None, depth: int = 0) -> bool:
    """Whether a value of this type may contain state (containers are looked into).

    A recursive alias (``Filter`` is one) unfolds forever: past a fixed depth the
    answer is "may", which only makes that part opaque, never a false error."""
    if depth > _MAX_DEPTH or typ is None or isinstance(typ, (AnyType, TypeVarType, CallableType)):
        return True  # a callable may be a module (``nnx.Sequential``'s layers)
    if isinstance(typ, Instance) and (typ.type.is_protocol or typ.type.fullname == "builtins.object"):
        return True
    if isinstance(typ, (TupleType, UnionType)):
        return any(_holds_state(get_proper_type(t), depth + 1) for t in typ.items)
    if isinstance(typ, Instance):
        if typ.type.fullname in names.CONTAINERS or any(is_subclass(typ.type, c) for c in names.CONTAINERS):
            return any(_holds_state(get_proper_type(a), depth + 1) for a in typ.args)
        return is_subclass(typ.type, names.OBJECT) or classify_type("", typ).role in ("leaf", "module")
    return False


#: How deep ``_holds_state`` looks into nested container types before answering "may".
_MAX_DEPTH = 12


#: A path key that only the run time knows (a container index, an Rngs stream name).
WILDCARD = "*"


def _holds_known_state(typ: Type | None) -> bool:
    """Whether a library attribute of this type holds state. The library declares its state
    with cell and module types, so ``Any`` (``dtype: Dtype``), Protocols (``Hashable``) and
    callables (initializers, activations) are static there; a container of callables is not
    (``nnx.Sequential``'s layers)."""
    proper = get_proper_type(typ) if typ is not None else None
    if proper is None or isinstance(proper, (AnyType, CallableType)):
        return False
    if isinstance(proper, TypeVarType):
        return _holds_known_state(proper.upper_bound)
    if isinstance(proper, (UnionType, TupleType)):
        return any(_holds_known_state(t) for t in proper.items)
    if isinstance(proper, Instance):
        if proper.type.is_protocol:  # nnx's own protocols stand for modules (``RecurrentCell``)
            return proper.type.fullname.startswith("nnx.")
        if proper.type.fullname == "builtins.object":
            return False
        if proper.type.fullname in names.CONTAINERS or any(is_subclass(proper.type, c) for c in names.CONTAINERS):
            return any(_holds_state(get_proper_type(a)) for a in proper.args)
        return _holds_state(proper)
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
    rng_kinds = [lookup(names.RNG_KEY), lookup(names.RNG_COUNT)]
    for path, field in _walk(info, (), lookup, set()):
        if field.role == "leaf":
            found.append(Leaf(path, field.kind))
        elif field.role == "rngs" and all(rng_kinds):
            found.extend(Leaf((*path, WILDCARD, leaf), kind) for leaf, kind in zip(("key", "count"), rng_kinds) if kind)
        elif field.role == "stream" and all(rng_kinds):  # one stream (Dropout's): its key and count
            found.extend(Leaf((*path, leaf), kind) for leaf, kind in zip(("key", "count"), rng_kinds) if kind)
        elif field.role != "static":
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
        elif field.role == "items" and field.module is not None:
            yield from _walk(field.module, (*path, WILDCARD), lookup, seen)
        else:
            yield path, field
