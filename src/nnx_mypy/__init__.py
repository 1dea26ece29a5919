"""The nnx mypy plugin: mypy sees the state paths, filters and States of your modules.

Enable it in ``pyproject.toml``::

    [tool.mypy]
    plugins = ["nnx.mypy_plugin"]     # or "nnx_mypy": the same plugin, without importing nnx

It is static only: it reads the program mypy has analysed and never imports
JAX, nnx or your code; this package imports nothing but mypy and its own
modules (``nnx.mypy_plugin`` re-exports it, at the price of importing ``nnx``).
What it checks, each with its own error code (see ``errors``):

* ``nnx-state-path``: ``state.linaer`` / ``state["linaer"]`` on a State of a
  module without that state field (static fields are not state paths);
* ``nnx-filtered-out``: ``nnx.state(model, nnx.Param).mean`` where ``mean`` is
  a BatchStat;
* ``nnx-collection``: a collection string that no Variable kind declares;
* ``nnx-filter``: a value that is not a filter;
* ``nnx-unmatched-filter``: a filter that matches no state of the module (a
  warning in spirit: disable the code if you split generically);
* ``nnx-split-unmatched``: ``nnx.split`` filters that leave state unmatched;
* ``nnx-wrt``: ``nnx.grad(f, wrt=...)`` whose filter matches nothing in the
  differentiated module;
* ``nnx-state-mismatch``: ``nnx.update`` / ``nnx.merge`` with a State of
  another module class.

Declared fields read as ``Param[T]`` on the class (``Linear.w``) with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from mypy.nodes import MypyFile, TypeInfo
from mypy.plugin import (
    AttributeContext,
    ClassDefContext,
    FunctionContext,
    FunctionSigContext,
    MethodContext,
    Plugin,
    ReportConfigContext,
)
from mypy.options import Options
from mypy.types import FunctionLike, Type

from nnx_mypy import names
from nnx_mypy.checks import Checks
from nnx_mypy.record import is_subclass, record_kind, record_module

__all__ = ["NnxPlugin", "plugin"]


class NnxPlugin(Plugin):
    """Dispatches mypy's hooks to ``record`` (semantic analysis) and ``checks``."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._collections: dict[str, list[TypeInfo]] | None = None
        self._scanned = 0
        self.checks = Checks(self._info, self._known_collections)

    def report_config_data(self, ctx: ReportConfigContext) -> str:
        """A digest of the plugin's own source: mypy's cache is stale when the plugin changes."""
        return _SOURCE_DIGEST

    # -- lookups ----------------------------------------------------------
    def _info(self, fullname: str) -> TypeInfo | None:
        if self._modules is None:
            return None
        if fullname.startswith(names.COLLECTION_PREFIX):
            return self._kind_of_collection(fullname[len(names.COLLECTION_PREFIX) :])
        symbol = self.lookup_fully_qualified(fullname)
        return symbol.node if symbol is not None and isinstance(symbol.node, TypeInfo) else None

    def _known_collections(self) -> dict[str, list[TypeInfo]]:
        """Collection name -> Variable kinds declaring it (or a base kind declaring it),
        over every module mypy has loaded; rebuilt when the modules change."""
        modules = self._modules or {}
        # Modules loaded from mypy's cache run no class hook, so a kind can arrive unannounced:
        # scan again whenever more modules are loaded than at the last scan.
        if self._collections is None or self._scanned != len(modules):
            self._collections = _scan_kinds(modules)
            self._scanned = len(modules)
        return self._collections

    def _kind_of_collection(self, collection: str) -> TypeInfo | None:
        """The kind ``nnx.ref(collection)`` creates: the first that declares the collection itself
        (nnx's own kinds are defined first at run time)."""
        own = [
            k
            for k in self._known_collections().get(collection, [])
            if k.metadata.get(names.METADATA_KIND, {}).get("collection") == collection
        ]
        own.sort(key=lambda k: not k.fullname.startswith("nnx."))
        return own[0] if own else None

    def _record_kind(self, ctx: ClassDefContext) -> None:
        record_kind(ctx)
        self._collections = None  # a kind analysed after the last scan: scan again when asked

    # -- semantic analysis ----------------------------------------------
    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        info = self._info(fullname) if fullname.startswith(("nnx.",)) or "." in fullname else None
        if info is None:
            return None
        if is_subclass(info, names.OBJECT):
            return record_module
        if is_subclass(info, names.VARIABLE):
            return self._record_kind
        return None

    # -- type checking --------------------------------------------------
    def get_function_signature_hook(self, fullname: str) -> Callable[[FunctionSigContext], FunctionLike] | None:
        if fullname in names.FILTER_FUNCTIONS:
            return self.checks.relax_filters
        if fullname in names.FILTER_CONSTRUCTORS:
            return self.checks.relax_all
        if fullname in names.WRT_CALLS:
            return self.checks.relax_wrt
        return None

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        if fullname in names.FILTER_FUNCTIONS:
            return self.checks.filter_call(names.FILTER_FUNCTIONS[fullname], fullname.replace(".graph", ""))
        if fullname in names.FILTER_CONSTRUCTORS:
            return self.checks.validate_filters
        if fullname in names.WRT_CALLS:
            where = "nnx.Optimizer" if names.WRT_CALLS[fullname] == "model" else "nnx." + fullname.rsplit(".", 1)[1]
            return self.checks.wrt_call(names.WRT_CALLS[fullname], where)
        if fullname == "nnx.fields.ref":
            return self.checks.ref_field
        if fullname == "nnx.graph.update":
            return self.checks.update_call
        if fullname == "nnx.graph.merge":
            return self.checks.merge_call
        return None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        if fullname == names.STATE + ".__getitem__":
            return self.checks.state_item
        return None

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        if fullname.startswith(names.STATE + "."):
            return self.checks.state_attribute
        return None

    def get_class_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        owner, _, name = fullname.rpartition(".")
        info = self._info(owner)
        if info is None:
            return None
        declared = info.metadata.get(names.METADATA_FIELDS, {}).get("fields", {}).get(name)
        if not declared or declared.get("static"):
            return None
        kind = self._info(declared.get("kind") or names.VARIABLE)
        return self.checks.class_field(kind) if kind is not None else None


def _digest() -> str:
    sha = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        sha.update(source.read_bytes())
    return sha.hexdigest()[:16]


_SOURCE_DIGEST = _digest()


def _scan_kinds(modules: dict[str, MypyFile]) -> dict[str, list[TypeInfo]]:
    kinds: list[TypeInfo] = []
    for module in modules.values():
        for symbol in module.names.values():
            node = symbol.node
            if isinstance(node, TypeInfo) and node.module_name == module.fullname and names.METADATA_KIND in node.metadata:
                kinds.append(node)
    by_collection: dict[str, list[TypeInfo]] = {}
    for kind in kinds:
        for base in kind.mro:
            collection = base.metadata.get(names.METADATA_KIND, {}).get("collection")
            if base.fullname == names.VARIABLE:
                collection = "variables"
            if collection is not None:
                by_collection.setdefault(collection, []).append(kind)
    return by_collection


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return NnxPlugin
