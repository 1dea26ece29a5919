"""Type-checking hooks: State paths, filters, and States of the wrong module.

Every check reports with its own error code (``nnx_mypy.errors``) and a
message that lists the valid choices.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mypy.checker import TypeChecker
from mypy.maptype import map_instance_to_supertype
from mypy.nodes import ARG_STAR, ARG_STAR2, EllipsisExpr, Expression, IndexExpr, IntExpr, MemberExpr, StrExpr, TypeInfo
from mypy.plugin import AttributeContext, CheckerPluginInterface, FunctionContext, FunctionSigContext, MethodContext
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    LiteralType,
    NoneType,
    ProperType,
    TupleType,
    Type,
    TypeOfAny,
    UninhabitedType,
    UnionType,
    get_proper_type,
)

from nnx_mypy import errors, names
from nnx_mypy.filters import Evaluator, Match
from nnx_mypy.model import WILDCARD, Field, Leaf, Lookup, fields_of, is_module, leaves
from nnx_mypy.record import is_subclass

_CODES = {"filter": errors.NOT_A_FILTER, "collection": errors.COLLECTION}


#: Keyword parameters of the filter functions that are not filters (``nnx.split(m, graph=False)``).
_NOT_FILTERS = frozenset({"graph"})


class Checks:
    """The check-time hooks; ``lookup`` finds classes, ``collections`` the declared kinds."""

    def __init__(self, lookup: Lookup, collections: Callable[[], dict[str, list[TypeInfo]]]) -> None:
        self.lookup = lookup
        self.collections = collections

    # -- helpers --------------------------------------------------------
    def _evaluator(self, api: CheckerPluginInterface) -> Evaluator:
        def type_of(expr: Expression) -> ProperType:
            # The checker has already typed the arguments; reading the cached type
            # avoids checking an expression twice.
            if isinstance(api, TypeChecker) and api.has_type(expr):
                return get_proper_type(api.lookup_type(expr))
            return get_proper_type(api.get_expression_type(expr))

        return Evaluator(type_of, self.collections)

    def _report(self, evaluator: Evaluator, api: CheckerPluginInterface) -> None:
        for problem in evaluator.problems:
            api.fail(problem.message, problem.node, code=_CODES[problem.code])

    def _state_args(self, typ: Type) -> tuple[TypeInfo | None, ProperType | None]:
        """The module class and the kinds of a State type (None where not known)."""
        proper = get_proper_type(typ)
        if not (isinstance(proper, Instance) and is_subclass(proper.type, names.STATE)):
            return None, None
        state_info = self.lookup(names.STATE)
        if state_info is None:
            return None, None
        state = map_instance_to_supertype(proper, state_info)
        if len(state.args) != 2:
            return None, None
        module = get_proper_type(state.args[0])
        kinds = get_proper_type(state.args[1])
        info = module.type if isinstance(module, Instance) and is_module(module.type) else None
        return info, (None if isinstance(kinds, AnyType) else kinds)

    def _state_type(self, module: TypeInfo, kinds: ProperType | None, api: CheckerPluginInterface) -> Instance:
        kinds_arg: Type = kinds if kinds is not None else AnyType(TypeOfAny.special_form)
        state = self.lookup(names.STATE)
        assert state is not None, "a State type exists, or no State would reach this hook"
        return Instance(state, [_instance(module), kinds_arg])

    # -- state paths ----------------------------------------------------
    def state_attribute(self, ctx: AttributeContext) -> Type:
        """``state.linear.w``: the path must be a state field of the module."""
        if not isinstance(ctx.context, MemberExpr):
            return ctx.default_attr_type
        return self._path(ctx.type, ctx.context.name, ctx.context, ctx.api, ctx.default_attr_type)

    def state_item(self, ctx: MethodContext) -> Type:
        """``state["linear"]["w"]``: the same check for literal keys."""
        if not (ctx.args and ctx.args[0]):
            return ctx.default_return_type
        key = ctx.args[0][0]
        name = key.value if isinstance(key, StrExpr) else _literal_str(ctx.arg_types[0][0])
        if name is None:
            return ctx.default_return_type
        where = ctx.context if isinstance(ctx.context, IndexExpr) else key
        return self._path(ctx.type, name, where, ctx.api, ctx.default_return_type)

    def _path(self, state: ProperType, name: str, where: Expression, api: CheckerPluginInterface, default: Type) -> Type:
        module, kinds = self._state_args(state)
        if module is None or (isinstance(state, Instance) and state.type.get(name) is not None):
            return default  # not a module's State, or a State member (paths, leaves, ...)
        fields = fields_of(module, self.lookup)
        field = fields.get(name)
        state_fields = sorted(f.name for f in fields.values() if f.role != "static")
        if field is None or field.role == "static":
            why = f'"{name}" is a static field of {module.name} (it lives in the GraphDef)' if field else (
                f'{module.name} has no state path "{name}"'
            )
            api.fail(f"{why}; its state fields are: {', '.join(state_fields) or '(none)'}", where, code=errors.STATE_PATH)
            return AnyType(TypeOfAny.from_error)
        if kinds is not None and not self._kept(module, field, kinds):
            kept = [f.name for f in fields.values() if f.role != "static" and self._kept(module, f, kinds)]
            api.fail(
                f'"{name}" ({field.describe().split(": ")[1]}) of {module.name} was removed by the filter; '
                f"this State holds only {_kinds_text(kinds)}: {', '.join(sorted(kept)) or '(nothing)'}",
                where,
                code=errors.FILTERED_OUT,
            )
            return AnyType(TypeOfAny.from_error)
        if field.role == "leaf":
            return field.value_type or AnyType(TypeOfAny.special_form)
        if field.role == "module" and field.module is not None:
            return self._state_type(field.module, kinds, api)
        items = self.lookup(names.ITEMS)
        if field.role == "items" and field.module is not None and items is not None:
            return Instance(items, [self._state_type(field.module, kinds, api)])  # state.blocks[0].kernel
        return AnyType(TypeOfAny.special_form)

    def _kept(self, module: TypeInfo, field: Field, kinds: ProperType) -> bool:
        """Whether the State with these kinds may hold something at ``field``."""
        if field.role == "leaf":
            return _kind_in(field.kind, kinds)
        if field.role in ("module", "items") and field.module is not None:
            found, complete = leaves(field.module, self.lookup)
            return not complete or any(_kind_in(leaf.kind, kinds) for leaf in found)
        if field.role in ("rngs", "stream"):
            return any(_kind_in(self.lookup(k), kinds) for k in (names.RNG_KEY, names.RNG_COUNT))
        return True  # opaque: may hold anything

    # -- filters --------------------------------------------------------
    def relax_filters(self, ctx: FunctionSigContext) -> CallableType:
        """Filter parameters accept anything here; ``filter_call`` says what is wrong
        with a bad one, listing the valid spellings, instead of a generic arg-type error."""
        sig = ctx.default_signature
        obj = ctx.api.named_generic_type("builtins.object", [])
        # 0: the node; ``graph=`` (tree mode, a bool) is no filter and keeps its type
        types = [t if i == 0 or n in _NOT_FILTERS else obj for i, (n, t) in enumerate(zip(sig.arg_names, sig.arg_types))]
        return sig.copy_modified(arg_types=types)  # pyright: ignore[reportUnknownMemberType]  # mypy's _dummy defaults

    def relax_all(self, ctx: FunctionSigContext) -> CallableType:
        """``nnx.Not`` / ``All`` / ``Any``: every parameter is a filter (see ``relax_filters``)."""
        obj = ctx.api.named_generic_type("builtins.object", [])
        relaxed = [obj for _ in ctx.default_signature.arg_types]
        return ctx.default_signature.copy_modified(arg_types=relaxed)  # pyright: ignore[reportUnknownMemberType]  # mypy's _dummy defaults

    def filter_call(self, exhaustive: bool, where: str) -> Callable[[FunctionContext], Type]:
        """``nnx.split`` / ``nnx.state`` / ``nnx.pop``: check the filters, type each State by the kinds it holds."""

        def hook(ctx: FunctionContext) -> Type:
            formals = [i for i, name in enumerate(ctx.callee_arg_names) if name not in _NOT_FILTERS]
            exprs = [e for i in formals for e in ctx.args[i]]
            kinds = [k for i in formals for k in ctx.arg_kinds[i]]
            node_types = ctx.arg_types[0] if ctx.arg_types else []
            if not exprs or not node_types or any(k in (ARG_STAR, ARG_STAR2) for k in kinds):
                return ctx.default_return_type  # ``*filters``: how many, and which, is not known
            evaluator = self._evaluator(ctx.api)
            matches = [evaluator.evaluate(f) for f in exprs[1:]]
            self._report(evaluator, ctx.api)
            node = get_proper_type(node_types[0])
            if not (isinstance(node, Instance) and is_module(node.type)) or evaluator.problems:
                return ctx.default_return_type
            return self._typed_parts(node.type, exprs[1:], matches, ctx, exhaustive, where)

        return hook

    def _typed_parts(
        self, module: TypeInfo, exprs: list[Expression], matches: list[Match], ctx: FunctionContext, exhaustive: bool, where: str
    ) -> Type:
        found, complete = leaves(module, self.lookup)
        sown = [self._sown_only(m) for m in matches]
        # Each known leaf goes to the first filter that matches it, as at run time; where a
        # filter's answer is not known statically the leaf may be in that part or a later one,
        # so it counts for each (a State's kinds say what it *may* hold: no false errors).
        groups: list[list[Leaf]] = [[] for _ in matches]
        unmatched: list[Leaf] = []
        for leaf in found:
            for i, match in enumerate(matches):
                answer = match(leaf)
                if answer is not False:
                    groups[i].append(leaf)
                if answer is True:
                    break
            else:
                unmatched.append(leaf)
        maybe = [False] * len(matches)  # filters that a subclass instance's leaves could reach
        for probe in self._subclass_probes(found):
            for i, match in enumerate(matches):
                answer = match(probe)
                maybe[i] = maybe[i] or answer is not False
                if answer is True:
                    break
        listing = ", ".join(f"{'.'.join(l.path)}: {l.kind.name if l.kind else 'array'}" for l in found)
        for i, expr in enumerate(exprs):
            # ``...`` is the catch-all: collecting nothing is what it is for on a fully split module.
            if (
                not groups[i]
                and complete
                and not sown[i]
                and not isinstance(expr, EllipsisExpr)
                and not maybe[i]
            ):
                ctx.api.fail(
                    f"Filter matches no state of {module.name} in {where}; its state is: {listing or '(none)'}",
                    expr,
                    code=errors.UNMATCHED_FILTER,
                )
        certain = [leaf for leaf in unmatched if all(m(leaf) is False for m in matches)]
        if exhaustive and matches and certain:
            paths = ", ".join(f"{'.'.join(l.path)} ({l.kind.name if l.kind else 'array'})" for l in certain)
            ctx.api.fail(
                f"{where} leaves {paths} of {module.name} unmatched by every filter; add a filter for "
                "them or end with ... to collect the rest",
                ctx.context,
                code=errors.SPLIT_UNMATCHED,
            )
        kinds: list[ProperType | None] = [_union_of_kinds(g, ctx.api) for g in groups]
        if not matches:
            kinds = [None]
        typed = self._with_kinds(ctx.default_return_type, module, kinds, ctx.api)
        return _untyped_where(typed, sown) if any(sown) else typed

    def _subclass_probes(self, found: list[Leaf]) -> list[Leaf]:
        """Leaves a subclass instance could add. A submodule may be a subclass of its declared
        class (surgery: ``model.linear = nnx.LoRALinear.from_linear(...)``) whose extra leaves
        are usually of a kind derived from one it holds (``LoRAParam`` from ``Param``); a filter
        that could take them is not reported as matching nothing."""
        kinds = [k for ks in self.collections().values() for k in ks]
        probes: dict[tuple[tuple[str, ...], str], Leaf] = {}
        for leaf in found:
            if leaf.kind is None:
                continue
            for kind in kinds:
                if kind.fullname != leaf.kind.fullname and kind.has_base(leaf.kind.fullname):
                    path = (*leaf.path[:-1], WILDCARD)
                    probes[(path, kind.fullname)] = Leaf(path, kind)
        return list(probes.values())

    def _sown_only(self, match: Match) -> bool:
        """Whether a filter selects intermediates and nothing else (``nnx.Intermediate``,
        ``"intermediates"``): values sown at run time, possibly by code that is not the
        module's own (``module.sow`` in a helper), so their paths are not checked."""
        intermediate, param = self.lookup("nnx.variables.Intermediate"), self.lookup("nnx.variables.Param")
        if intermediate is None or param is None:
            return False
        probe = ("?",)
        others = [Leaf(probe, param), Leaf(probe, None)]
        return match(Leaf(probe, intermediate)) is True and all(match(o) is False for o in others)

    def _with_kinds(self, ret: Type, module: TypeInfo, kinds: list[ProperType | None], api: CheckerPluginInterface) -> Type:
        # The State types are rebuilt from the node's class: with a State[Any] type
        # context (``nnx.update(m, nnx.state(m.linear))``) mypy solved ``N`` as Any.
        proper = get_proper_type(ret)
        states = iter(kinds)
        if isinstance(proper, TupleType):
            items = [self._state_type(module, next(states, None), api) if _is_state(t) else t for t in proper.items]
            return proper.copy_modified(items=items)
        if _is_state(proper) and len(kinds) == 1:
            return self._state_type(module, kinds[0], api)
        return ret

    def validate_filters(self, ctx: FunctionContext) -> Type:
        """``nnx.Not(...)``, ``nnx.All(...)``, ``nnx.Any(...)``: their arguments are filters too."""
        evaluator = self._evaluator(ctx.api)
        for group, kinds in zip(ctx.args, ctx.arg_kinds):
            for expr, kind in zip(group, kinds):
                if kind not in (ARG_STAR, ARG_STAR2):
                    evaluator.evaluate(expr)
        self._report(evaluator, ctx.api)
        return ctx.default_return_type

    def ref_field(self, ctx: FunctionContext) -> Type:
        """``nnx.ref("params")``: the collection must be declared by some kind."""
        if ctx.args and ctx.args[0] and isinstance(ctx.args[0][0], StrExpr):
            evaluator = self._evaluator(ctx.api)
            evaluator.evaluate(ctx.args[0][0])
            self._report(evaluator, ctx.api)
        return ctx.default_return_type

    # -- wrt= filters ---------------------------------------------------
    def relax_wrt(self, ctx: FunctionSigContext) -> CallableType:
        """``wrt=`` accepts anything here; ``wrt_call`` reports a bad filter with the valid spellings."""
        sig = ctx.default_signature
        obj = ctx.api.named_generic_type("builtins.object", [])
        types = [obj if name == "wrt" else t for name, t in zip(sig.arg_names, sig.arg_types)]
        return sig.copy_modified(arg_types=types)  # pyright: ignore[reportUnknownMemberType]  # mypy's _dummy defaults

    def wrt_call(self, source: str, where: str) -> Callable[[FunctionContext], Type]:
        """``nnx.grad(f, wrt=...)`` / ``nnx.Optimizer(model, tx, wrt=...)``: the filter must
        match some state of the module it applies to."""

        def hook(ctx: FunctionContext) -> Type:
            wrt = _argument(ctx, "wrt")
            if wrt is None:
                return ctx.default_return_type
            evaluator = self._evaluator(ctx.api)
            match = evaluator.evaluate(wrt)
            self._report(evaluator, ctx.api)
            module = self._wrt_module(ctx, source)
            if module is None or evaluator.problems:
                return ctx.default_return_type
            found, complete = leaves(module, self.lookup)
            answers = [match(leaf) for leaf in found]
            if complete and not any(a is not False for a in answers) and not any(
                match(probe) is not False for probe in self._subclass_probes(found)
            ):
                listing = ", ".join(f"{'.'.join(l.path)}: {l.kind.name if l.kind else 'array'}" for l in found)
                ctx.api.fail(
                    f"{where}: wrt= matches no state of {module.name}, so the gradient would be empty; "
                    f"its state is: {listing or '(none)'}",
                    wrt,
                    code=errors.WRT,
                )
            return ctx.default_return_type

        return hook

    def _wrt_module(self, ctx: FunctionContext, source: str) -> TypeInfo | None:
        """The module class ``wrt`` applies to: the model argument, or the parameter
        ``argnums`` of the differentiated function."""
        if source == "model":
            typ = _argument_type(ctx, "model")
        else:
            fun = _argument_type(ctx, "fun")
            argnums = _argument(ctx, "argnums")
            index = argnums.value if isinstance(argnums, IntExpr) else 0 if argnums is None else None
            proper = get_proper_type(fun) if fun is not None else None
            typ = (
                proper.arg_types[index]
                if isinstance(proper, CallableType) and index is not None and index < len(proper.arg_types)
                else None
            )
        proper_typ = get_proper_type(typ) if typ is not None else None
        return proper_typ.type if isinstance(proper_typ, Instance) and is_module(proper_typ.type) else None

    # -- States of another module --------------------------------------
    def update_call(self, ctx: FunctionContext) -> Type:
        """``nnx.update(model, state)``: ``state`` must come from ``model``'s class."""
        if ctx.arg_types and ctx.arg_types[0]:
            node = get_proper_type(ctx.arg_types[0][0])
            if isinstance(node, Instance) and is_module(node.type):
                self._same_module(node.type, ctx.arg_types[1:], ctx.args[1:], "nnx.update", ctx.api)
        return ctx.default_return_type

    def merge_call(self, ctx: FunctionContext) -> Type:
        """``nnx.merge(graphdef, state)``: ``state`` must come from the GraphDef's class."""
        if ctx.arg_types and ctx.arg_types[0]:
            graphdef = get_proper_type(ctx.arg_types[0][0])
            if isinstance(graphdef, Instance) and graphdef.args:
                target = get_proper_type(graphdef.args[0])
                if isinstance(target, Instance) and is_module(target.type):
                    self._same_module(target.type, ctx.arg_types[1:], ctx.args[1:], "nnx.merge", ctx.api)
        return ctx.default_return_type

    def _same_module(
        self, module: TypeInfo, types: Sequence[list[Type]], exprs: Sequence[list[Expression]], where: str, api: CheckerPluginInterface
    ) -> None:
        for group_types, group_exprs in zip(types, exprs):
            for typ, expr in zip(group_types, group_exprs):
                other, _ = self._state_args(typ)
                if other is None or other is module or other.has_base(module.fullname) or module.has_base(other.fullname):
                    continue
                api.fail(
                    f"{where}: this State comes from {other.name}, not {module.name}; pass a State taken "
                    f"from a {module.name} (nnx.state / nnx.split of it)",
                    expr,
                    code=errors.STATE_MISMATCH,
                )

    # -- class access to declared fields -------------------------------
    def class_field(self, kind: TypeInfo) -> Callable[[AttributeContext], Type]:
        """``Linear.w`` is the cell kind of the field (``Param[Array]``), not the value type."""

        def hook(ctx: AttributeContext) -> Type:
            args = [ctx.default_attr_type] if kind.defn.type_vars else []
            return Instance(kind, args)

        return hook


def _untyped_where(ret: Type, flags: list[bool]) -> Type:
    """``ret`` with ``State[Any, Any]`` for the States whose flag is set."""
    proper = get_proper_type(ret)
    states = iter(flags)

    def loosen(item: Type) -> Type:
        p = get_proper_type(item)
        if isinstance(p, Instance) and _is_state(p) and next(states, False):
            return p.copy_modified(args=[AnyType(TypeOfAny.special_form)] * len(p.args))  # pyright: ignore[reportUnknownMemberType]  # mypy's _dummy defaults
        return item

    if isinstance(proper, TupleType):
        return proper.copy_modified(items=[loosen(t) for t in proper.items])
    return loosen(proper)


def _is_state(typ: Type) -> bool:
    proper = get_proper_type(typ)
    return isinstance(proper, Instance) and is_subclass(proper.type, names.STATE)


def _instance(info: TypeInfo) -> Instance:
    """``info`` with ``Any`` for each type parameter."""
    return Instance(info, [AnyType(TypeOfAny.special_form)] * len(info.defn.type_vars))


def _argument(ctx: FunctionContext, name: str) -> Expression | None:
    """The expression passed for parameter ``name`` (None when defaulted)."""
    if name in ctx.callee_arg_names:
        group = ctx.args[ctx.callee_arg_names.index(name)]
        return group[0] if group else None
    return None


def _argument_type(ctx: FunctionContext, name: str) -> Type | None:
    if name in ctx.callee_arg_names:
        group = ctx.arg_types[ctx.callee_arg_names.index(name)]
        return group[0] if group else None
    return None


def _literal_str(typ: Type) -> str | None:
    proper = get_proper_type(typ)
    if isinstance(proper, LiteralType) and isinstance(proper.value, str):
        return proper.value
    if isinstance(proper, Instance) and proper.last_known_value is not None:
        value = proper.last_known_value.value
        return value if isinstance(value, str) else None
    return None


def _kind_in(kind: TypeInfo | None, kinds: ProperType) -> bool:
    """Whether a leaf of ``kind`` may be in a State holding ``kinds``: the plugin lists the exact
    kinds each part of a split received, so a ``LoRAParam`` that went to an earlier filter is not
    in a later ``nnx.Param`` part."""
    items = kinds.items if isinstance(kinds, UnionType) else [kinds]
    for item in map(get_proper_type, items):
        if isinstance(item, NoneType) and kind is None:
            return True
        if isinstance(item, Instance) and kind is not None and kind.fullname == item.type.fullname:
            return True
        if isinstance(item, AnyType):
            return True
    return False


def _kinds_text(kinds: ProperType) -> str:
    items = kinds.items if isinstance(kinds, UnionType) else [kinds]
    shown = [
        "arrays" if isinstance(p, NoneType) else p.type.name if isinstance(p, Instance) else str(p)
        for p in map(get_proper_type, items)
        if not isinstance(p, UninhabitedType)
    ]
    return " | ".join(shown) or "nothing"


def _union_of_kinds(group: list[Leaf], api: CheckerPluginInterface) -> ProperType:
    seen: dict[str, Type] = {}
    for leaf in group:
        if leaf.kind is None:
            seen["None"] = NoneType()
        else:
            seen[leaf.kind.fullname] = _instance(leaf.kind)
    if not seen:
        return UninhabitedType()
    return get_proper_type(UnionType.make_union(list(seen.values())))
