"""``State``: the pure, pytree side of a module.

A State mirrors the attribute structure of the module it came from:
``state.block.linear.w`` and ``state["block"]["linear"]["w"]`` both read the
array stored at that path. Internally a State is a *layout* (the sorted leaf
paths, each leaf's Variable kind and metadata; immutable and shared between
States of the same structure) plus a flat list of leaf values. That makes the
operations JAX does on every call cheap: flattening a State hands JAX the list
as it is, unflattening wraps a new list around the same layout, and
``jax.tree.map`` keeps kinds and metadata because they live in the layout.

Sub-states (``state.block``) are views over the same leaf list, so
``state.block.linear.w = x`` writes into ``state``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Generic, Iterator, Mapping, Protocol, TypeVar, overload

import jax
import numpy as np
from typing_extensions import TypeVar as DefaultTypeVar

from nnx.filters import Everything, Filter, Key, LeafKind, Path, describe, to_filter
from nnx.refs import current_trace
from nnx.variables import Variable

#: The module class a State came from; covariant, so ``State[Linear]`` is a ``State[Module]``.
#: Defaults to ``Any``: a bare ``nnx.State`` annotation is a State of some module.
M = DefaultTypeVar("M", covariant=True, default=Any)
#: The Variable kinds a State holds (``Any``: not known). Only the mypy plugin fills it in,
#: with the exact kinds of the leaves the filters gave this part (``nnx.state(m, nnx.Param)``
#: is ``State[Linear, Param[Any]]`` there), so that a path the filter removed is an error;
#: everywhere else it stays at its default and reads ``State[M]``.
K = DefaultTypeVar("K", covariant=True, default=Any)
S = TypeVar("S")
N = TypeVar("N")
S_co = TypeVar("S_co", covariant=True)
# The slots of ``Parts`` (for type checkers only).
_Pp = TypeVar("_Pp", covariant=True)
_Np = TypeVar("_Np", covariant=True)
_Pb = TypeVar("_Pb", covariant=True)
_Nb = TypeVar("_Nb", covariant=True)
_Pc = TypeVar("_Pc", covariant=True)
_Nc = TypeVar("_Nc", covariant=True)
_Pi = TypeVar("_Pi", covariant=True)
_Ni = TypeVar("_Ni", covariant=True)
_Rest = TypeVar("_Rest", covariant=True)
_Whole = TypeVar("_Whole", covariant=True)
_Coll = TypeVar("_Coll", contravariant=True)
_Pl = TypeVar("_Pl", covariant=True)
_Nl = TypeVar("_Nl", covariant=True)
_Ppl = TypeVar("_Ppl", covariant=True)
Meta = tuple[tuple[str, Any], ...]


class Exact(Generic[N]):
    """For type checkers only: ``Exact[Linear]`` is not an ``Exact[Base]`` nor an
    ``Exact[Sub]`` (invariant), so a State type declared for one class is not inherited
    by its subclasses (``HasState``)."""


class StateOf(Generic[N, S_co]):
    """For type checkers only: what ``__nnx_state__`` is declared as on a module class with
    a concrete State class: ``__nnx_state__: StateOf[Linear, LinearState]``."""


class HasState(Protocol[N, S_co]):
    """What a type checker sees of a module class with a concrete State class: a library
    layer (``nnx.Linear`` declares ``__nnx_state__: StateOf[Linear, LinearState]``) or a
    class in a stub that ``nnx.stubgen`` generated.

    ``nnx.state`` / ``nnx.split`` / ``nnx.pop`` return that class for it. ``__nnx_self__``
    (declared on ``Object`` for checkers only) is ``Exact[type of the instance]``: a subclass
    that declares no State class of its own inherits its base's ``__nnx_state__``, whose
    ``Exact[Base]`` does not match ``Exact[Sub]``, so it gets the generic ``State[Sub]``
    instead of a State class that lacks its own fields. Neither attribute exists at run time.
    """

    @property
    def __nnx_self__(self) -> Exact[N]: ...
    @property
    def __nnx_state__(self) -> StateOf[N, S_co]: ...


def path_order(path: Path) -> tuple[tuple[int, Any], ...]:
    """Sort key for paths: integer keys before string keys at each level."""
    return tuple((0, k) if isinstance(k, int) else (1, k) for k in path)


def freeze_metadata(metadata: Mapping[str, Any]) -> Meta:
    """Metadata as a hashable, sorted tuple of pairs (unhashable values compare by identity)."""
    if not metadata:
        return ()
    out: list[tuple[str, Any]] = []
    for key in sorted(metadata):
        value = metadata[key]
        try:
            hash(value)
        except TypeError:
            value = _ByIdentity(value)
        out.append((key, value))
    return tuple(out)


def thaw_metadata(meta: Meta) -> dict[str, Any]:
    """Inverse of ``freeze_metadata``."""
    return {k: v.value if isinstance(v, _ByIdentity) else v for k, v in meta}


class _ByIdentity:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


def path_str(path: Path) -> str:
    """``("block", 0, "w")`` -> ``"block.0.w"`` (the spelling used in messages and checkpoints)."""
    return ".".join(str(k) for k in path) if path else "<root>"


class Layout:
    """The structure of a State: sorted leaf paths with their kinds and metadata.

    The paths can also be given as a function that makes them, called the
    first time something reads ``paths`` (``Layout.deferred``). The graph walk
    uses that: a chain of submodules ``d`` deep has paths of total length
    about ``d²/2``, so a split that never reads them stays linear in ``d``.
    """

    __slots__ = ("_paths", "_make_paths", "kinds", "metas", "_hash", "_children", "_subs", "_splits")

    def __init__(self, paths: tuple[Path, ...], kinds: tuple[LeafKind, ...], metas: tuple[Meta, ...]) -> None:
        self._paths: tuple[Path, ...] | None = paths
        self._make_paths: Callable[[], tuple[Path, ...]] | None = None
        self.kinds = kinds
        self.metas = metas
        self._hash: int | None = None
        self._children: dict[Key, int | tuple[int, int]] | None = None
        self._subs: dict[Key, Layout] = {}
        # Cached filter splits, and the graph layer's gather/update plans.
        self._splits: dict[Any, Any] = {}

    @classmethod
    def deferred(cls, make_paths: Callable[[], tuple[Path, ...]], kinds: tuple[LeafKind, ...], metas: tuple[Meta, ...]) -> Layout:
        """A layout whose paths ``make_paths()`` builds when they are first read."""
        layout = cls((), kinds, metas)
        layout._paths, layout._make_paths = None, make_paths
        return layout

    @property
    def paths(self) -> tuple[Path, ...]:
        """The leaf paths, in sorted order."""
        paths = self._paths
        if paths is None:
            make = self._make_paths
            if make is None:  # another thread built them meanwhile (it stores them first)
                assert self._paths is not None
                return self._paths
            paths = self._paths = make()
            self._make_paths = None  # the walk's links are no longer needed
        return paths

    def __len__(self) -> int:
        return len(self.kinds)

    def __reduce__(self) -> tuple[type[Layout], tuple[tuple[Path, ...], tuple[LeafKind, ...], tuple[Meta, ...]]]:
        # Pickled (and deep-copied) with its paths built: the function that
        # builds them is local to the walk, and the caches are rebuilt on use.
        return (Layout, (self.paths, self.kinds, self.metas))

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self.paths, self.kinds, self.metas))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (
            isinstance(other, Layout)
            and hash(self) == hash(other)
            and self.paths == other.paths
            and self.kinds == other.kinds
            and self.metas == other.metas
        )

    def children(self) -> dict[Key, int | tuple[int, int]]:
        """Top-level keys: a leaf index, or the ``[start, stop)`` range of a subtree."""
        if self._children is None:
            children: dict[Key, int | tuple[int, int]] = {}
            for i, path in enumerate(self.paths):
                head = path[0]
                if len(path) == 1:
                    children[head] = i
                else:
                    prev = children.get(head)
                    children[head] = (prev[0] if isinstance(prev, tuple) else i, i + 1)
            self._children = children
        return self._children

    def sub(self, key: Key, start: int, stop: int) -> Layout:
        """The layout of the subtree under ``key`` (paths without their first key)."""
        sub = self._subs.get(key)
        if sub is None:
            sub = Layout(
                tuple(p[1:] for p in self.paths[start:stop]), self.kinds[start:stop], self.metas[start:stop]
            )
            self._subs[key] = sub
        return sub

    def select(self, indices: list[int]) -> Layout:
        """The layout of the leaves at ``indices`` (kept in order)."""
        return Layout(
            tuple(self.paths[i] for i in indices),
            tuple(self.kinds[i] for i in indices),
            tuple(self.metas[i] for i in indices),
        )

    def split(
        self, filters: tuple[Filter, ...], value_at: Any, *, exhaustive: bool, where: str
    ) -> tuple[list[Layout], list[list[int]]]:
        """Assign each leaf to the first filter matching it; one (layout, indices) per filter.

        ``exhaustive`` raises if a leaf matches no filter. Results for structural
        filters are cached on the layout; predicates are evaluated every time.
        """
        try:
            cache_key: Any = (filters, exhaustive)
            hit: tuple[list[Layout], list[list[int]]] | None = self._splits.get(cache_key)
        except TypeError:  # an unhashable filter: no caching
            cache_key, hit = None, None
        if hit is not None:
            return hit
        compiled = [to_filter(f) for f in filters]
        for f in compiled[:-1]:
            if isinstance(f, Everything):
                raise ValueError(
                    f"{where}: `...` (everything) must be the last filter, but it comes before "
                    f"others ({describe(filters)}), which would always get empty States. Move "
                    "`...` to the end: e.g. (nnx.Param, ...), not (..., nnx.Param)."
                )
        groups: list[list[int]] = [[] for _ in compiled]
        for i, (path, kind) in enumerate(zip(self.paths, self.kinds)):
            for g, f in enumerate(compiled):
                if f.matches(path, kind, None if f.structural else value_at(i)):
                    groups[g].append(i)
                    break
            else:
                if exhaustive:
                    kind_name = kind.__name__ if kind is not None else "array"
                    raise ValueError(
                        f"{where}: the filters ({describe(filters)}) leave '{path_str(path)}' "
                        f"({kind_name}) unmatched. Add a filter that matches it, or end the "
                        "filters with `...` to collect everything that is left."
                    )
        result = ([self.select(g) for g in groups], groups)
        if cache_key is not None and all(f.structural for f in compiled):
            if len(self._splits) > 256:  # bound the cache against ever-new filter objects
                self._splits.clear()
            self._splits[cache_key] = result
        return result


def _snapshot(kind: LeafKind, value: Any, meta: Meta, trace: object) -> Any:
    if kind is None:
        return value
    return kind._from_raw(value, thaw_metadata(meta), trace)


def _describe_leaf(kind: LeafKind, value: Any, meta: Meta) -> str:
    shape = getattr(value, "shape", None)
    shown = f"{getattr(value, 'dtype', '')}{list(shape)}" if shape is not None else repr(value)
    if kind is None:
        return shown
    extra = "".join(f", {k}={v!r}" for k, v in meta)
    return f"{kind.__name__}({shown}{extra})"


class State(Mapping[Key, Any], Generic[M, K]):
    """A nested mapping of state values, mirroring a module's attributes; a JAX pytree.

    ``M`` is the module type the state came from and ``K`` the Variable kinds it
    holds; both exist for the typing tools (``nnx.mypy_plugin`` checks paths
    against ``M``'s fields, the stubs of ``nnx.stubgen`` give each module a
    concrete State class) and cost nothing at run time.
    """

    __slots__ = ("_layout", "_leaves", "_offset")

    _layout: Layout
    _leaves: list[Any]
    _offset: int

    def __init__(self, mapping: Mapping[Key, Any] | None = None) -> None:
        flat: dict[Path, Any] = {}
        if mapping is not None:
            _flatten_nested(mapping, (), flat)
        built = State.from_flat_state(flat)
        object.__setattr__(self, "_layout", built._layout)
        object.__setattr__(self, "_leaves", built._leaves)
        object.__setattr__(self, "_offset", 0)

    @classmethod
    def _make(cls, layout: Layout, leaves: list[Any], offset: int = 0) -> State[Any]:
        state = object.__new__(cls)
        object.__setattr__(state, "_layout", layout)
        object.__setattr__(state, "_leaves", leaves)
        object.__setattr__(state, "_offset", offset)
        return state

    # -- flat view ------------------------------------------------------
    @classmethod
    def from_flat_state(cls, flat: Mapping[Path, Any]) -> State[Any]:
        """Build a State from ``{path: leaf}``; Variable leaves give the kind and metadata."""
        items = sorted(flat.items(), key=lambda kv: path_order(kv[0]))
        paths: list[Path] = []
        kinds: list[LeafKind] = []
        metas: list[Meta] = []
        leaves: list[Any] = []
        for path, leaf in items:
            if not isinstance(path, tuple) or not path:  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
                raise TypeError(f"State paths are non-empty tuples of str/int keys, got {path!r}.")
            paths.append(path)
            if isinstance(leaf, Variable):
                kinds.append(type(leaf))  # pyright: ignore[reportUnknownArgumentType]  # Any narrowed to Variable[Unknown]
                metas.append(freeze_metadata(leaf._metadata))
                leaves.append(leaf._value)
            else:
                kinds.append(None)
                metas.append(())
                leaves.append(leaf)
        layout = Layout(tuple(paths), tuple(kinds), tuple(metas))
        _check_prefix_free(layout)
        return cls._make(layout, leaves)

    def flat_state(self) -> dict[Path, Any]:
        """``{path: leaf}``, with each cell leaf as a fresh Variable of its kind (arrays as is)."""
        trace = current_trace()
        layout = self._layout
        return {
            path: _snapshot(kind, value, meta, trace)
            for path, kind, meta, value in zip(layout.paths, layout.kinds, layout.metas, self.leaves)
        }

    @property
    def paths(self) -> tuple[Path, ...]:
        """The leaf paths, in sorted order."""
        return self._layout.paths

    @property
    def leaves(self) -> list[Any]:
        """The leaf values, in path order (a copy)."""
        n = len(self._layout.kinds)
        return self._leaves[self._offset : self._offset + n]

    def kind(self, path: Path) -> LeafKind:
        """The Variable kind stored at ``path`` (None for a plain array)."""
        return self._layout.kinds[self._index(path)]

    def metadata(self, path: Path) -> dict[str, Any]:
        """The metadata of the cell at ``path``."""
        return thaw_metadata(self._layout.metas[self._index(path)])

    def _index(self, path: Path) -> int:
        try:
            return self._layout.paths.index(path)
        except ValueError:
            raise KeyError(f"State has no leaf at {path_str(path)!r}; paths: {[path_str(p) for p in self.paths]}") from None

    # -- mapping --------------------------------------------------------
    def __getitem__(self, key: Key) -> Any:
        entry = self._layout.children().get(key)
        if entry is None:
            raise KeyError(self._missing(key))
        if isinstance(entry, int):
            return self._leaves[self._offset + entry]
        start, stop = entry
        return State._make(self._layout.sub(key, start, stop), self._leaves, self._offset + start)

    def _missing(self, key: Key) -> str:
        return f"State has no entry {key!r}; entries: {list(self._layout.children())}"

    if TYPE_CHECKING:
        # Paths read and write as attributes; the mypy plugin and the generated stubs
        # check them against the module's fields (without either, any name passes).
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    else:

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            try:
                return self[name]
            except KeyError as e:
                raise AttributeError(e.args[0]) from None

        def __setattr__(self, name: str, value: Any) -> None:
            if name.startswith("_"):  # the slots (also what copy/pickle restore)
                object.__setattr__(self, name, value)
            else:
                self[name] = value

        def __delattr__(self, name: str) -> None:
            del self[name]

    def __setitem__(self, key: Key, value: Any) -> None:
        entry = self._layout.children().get(key)
        if isinstance(entry, int):
            kind = self._layout.kinds[entry]
            if isinstance(value, Variable):
                if kind is not None and not isinstance(value, kind):
                    raise TypeError(f"State[{key!r}] holds a {kind.__name__}; got a {type(value).__name__} cell.")  # pyright: ignore[reportUnknownArgumentType]
                value = value._value
            self._leaves[self._offset + entry] = value
            return
        if isinstance(entry, tuple) and isinstance(value, State):
            start, stop = entry
            if value._layout == self._layout.sub(key, start, stop):
                self._leaves[self._offset + start : self._offset + stop] = value.leaves
                return
        self._restructure(key, value)

    def __delitem__(self, key: Key) -> None:
        self._restructure(key, _DELETE)

    def _restructure(self, key: Key, value: Any) -> None:
        if self._offset != 0 or len(self._leaves) != len(self._layout.paths):
            raise TypeError(
                f"Cannot add or remove {key!r} through a sub-state view; build a new State "
                "(e.g. State.merge(...)) or change the root State."
            )
        flat = {p: v for p, v in self.flat_state().items() if p[0] != key}
        if value is _DELETE:
            if key not in self._layout.children():
                raise KeyError(self._missing(key))
        elif isinstance(value, Mapping):
            sub: dict[Path, Any] = {}
            _flatten_nested(value, (key,), sub)  # pyright: ignore[reportUnknownArgumentType]  # Mapping[Unknown, Unknown]
            flat.update(sub)
        else:
            flat[(key,)] = value
        new = State.from_flat_state(flat)
        object.__setattr__(self, "_layout", new._layout)
        object.__setattr__(self, "_leaves", new._leaves)

    def __iter__(self) -> Iterator[Key]:
        return iter(self._layout.children())

    def __len__(self) -> int:
        return len(self._layout.children())

    def __contains__(self, key: object) -> bool:
        return key in self._layout.children()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            if isinstance(other, Mapping):  # a nested dict: same paths, equal values (``state == {}``)
                return self._equals_mapping(other)  # pyright: ignore[reportUnknownArgumentType]
            return NotImplemented
        return self._layout == other._layout and all(
            a is b or _values_equal(a, b) for a, b in zip(self.leaves, other.leaves)
        )

    __hash__ = None  # type: ignore[assignment]

    def _equals_mapping(self, other: Mapping[Any, Any]) -> bool:
        """Equality with a nested mapping: the same leaf paths holding equal values
        (a Variable there compares by its value; kinds are not compared)."""
        flat: dict[Path, Any] = {}
        try:
            _flatten_nested(other, (), flat)
        except TypeError:  # a key that is not a str or int: no State has that path
            return False
        if set(flat) != set(self.paths):
            return False
        mine = dict(zip(self.paths, self.leaves))
        return all(
            _values_equal(mine[p], v._value if isinstance(v, Variable) else v)
            for p, v in flat.items()
        )

    def to_dict(self) -> dict[Key, Any]:
        """A nested plain ``dict`` of the values (no kinds, no metadata)."""
        out: dict[Key, Any] = {}
        for path, value in zip(self.paths, self.leaves):
            node = out
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = value
        return out

    # -- filtering ------------------------------------------------------
    def _value_at(self) -> Any:
        trace = current_trace()
        layout, leaves, off = self._layout, self._leaves, self._offset

        def value_at(i: int) -> Any:
            return _snapshot(layout.kinds[i], leaves[off + i], layout.metas[i], trace)

        return value_at

    def _parts(self, filters: tuple[Filter, ...], exhaustive: bool, where: str) -> list[State[M]]:
        layouts, groups = self._layout.split(filters, self._value_at(), exhaustive=exhaustive, where=where)
        leaves, off = self._leaves, self._offset
        return [State._make(lay, [leaves[off + i] for i in idx]) for lay, idx in zip(layouts, groups)]

    @overload
    def filter(self, f1: Filter, /) -> State[M]: ...
    @overload
    def filter(self, f1: Filter, f2: Filter, /) -> tuple[State[M], State[M]]: ...
    @overload
    def filter(self, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[M], State[M], State[M]]: ...
    @overload
    def filter(self, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *rest: Filter) -> tuple[State[M], ...]: ...
    def filter(self, *filters: Filter) -> State[M] | tuple[State[M], ...]:
        """Select leaves: one State per filter (a leaf goes to the first filter it matches)."""
        if not filters:
            raise TypeError("State.filter() needs at least one filter (e.g. nnx.Param).")
        parts = self._parts(filters, exhaustive=False, where="State.filter")
        return parts[0] if len(parts) == 1 else tuple(parts)

    @overload
    def split(self, f1: Filter, /) -> State[M]: ...
    @overload
    def split(self, f1: Filter, f2: Filter, /) -> tuple[State[M], State[M]]: ...
    @overload
    def split(self, f1: Filter, f2: Filter, f3: Filter, /) -> tuple[State[M], State[M], State[M]]: ...
    @overload
    def split(self, f1: Filter, f2: Filter, f3: Filter, f4: Filter, /, *rest: Filter) -> tuple[State[M], ...]: ...
    def split(self, *filters: Filter) -> State[M] | tuple[State[M], ...]:
        """Like ``filter`` but every leaf must be matched (end with ``...`` to catch the rest)."""
        if not filters:
            raise TypeError("State.split() needs at least one filter (e.g. nnx.Param, ...).")
        parts = self._parts(filters, exhaustive=True, where="State.split")
        return parts[0] if len(parts) == 1 else tuple(parts)

    partition = split

    @staticmethod
    def merge(state: State[S], /, *states: State[Any]) -> State[S]:
        """Combine States into one; where paths collide, later states win."""
        flat: dict[Path, Any] = {}
        for s in (state, *states):
            flat.update(s.flat_state())
        return State.from_flat_state(flat)

    def __or__(self, other: State[Any]) -> State[M]:
        return State.merge(self, other)

    def __repr__(self) -> str:
        if not self._layout.paths:
            return "State({})"
        return "State(" + self._repr_tree(0) + ")"

    def _repr_tree(self, depth: int) -> str:
        pad = "  " * (depth + 1)
        lines: list[str] = []
        for key in self._layout.children():
            entry = self._layout.children()[key]
            if isinstance(entry, int):
                shown = _describe_leaf(
                    self._layout.kinds[entry], self._leaves[self._offset + entry], self._layout.metas[entry]
                )
            else:
                shown = self[key]._repr_tree(depth + 1)
            lines.append(f"{pad}{key!r}: {shown}")
        return "{\n" + ",\n".join(lines) + "\n" + "  " * depth + "}"


_DELETE = object()


def _values_equal(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return bool(a == b)


def _flatten_nested(mapping: Mapping[Any, Any], prefix: Path, out: dict[Path, Any]) -> None:
    for key, value in mapping.items():
        if not isinstance(key, (str, int)):
            raise TypeError(f"State keys are str or int; got {key!r} at {path_str(prefix)!r}.")
        if isinstance(value, State):
            for path, leaf in value.flat_state().items():
                out[(*prefix, key, *path)] = leaf
        elif isinstance(value, Mapping) and not isinstance(value, Variable):
            _flatten_nested(value, (*prefix, key), out)  # pyright: ignore[reportUnknownArgumentType]  # Mapping[Unknown, Unknown]
        else:
            out[(*prefix, key)] = value


def _check_prefix_free(layout: Layout) -> None:
    for a, b in zip(layout.paths, layout.paths[1:]):
        if b[: len(a)] == a:
            raise ValueError(f"State path {path_str(a)!r} is both a leaf and a subtree (see {path_str(b)!r}).")


def _flatten(state: State[Any]) -> tuple[list[Any], Layout]:
    leaves, layout = state._leaves, state._layout
    if state._offset == 0 and len(leaves) == len(layout.paths):
        return leaves, layout  # JAX only reads the children list
    return state.leaves, layout


def _flatten_with_keys(state: State[Any]) -> tuple[list[tuple[Any, Any]], Layout]:
    keys = [jax.tree_util.DictKey(path_str(p)) for p in state._layout.paths]
    return list(zip(keys, state.leaves)), state._layout


def _unflatten(layout: Layout, leaves: Any) -> State[Any]:
    return State._make(layout, list(leaves))


jax.tree_util.register_pytree_with_keys(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    State, _flatten_with_keys, _unflatten, _flatten
)


if TYPE_CHECKING:

    class Items(State[Any, Any], Generic[S_co]):
        """For type checkers only: the State under a container of modules (``nnx.List``,
        ``nnx.Dict``, a list, dict or tuple of one Module class). Every entry is an ``S_co``,
        so ``state.blocks[0].kernel`` is checked. At run time it is a plain ``State``."""

        def __getitem__(self, key: Key) -> S_co: ...

    class NoState(State[Any, Any]):
        """For type checkers only: what a filter that matches no leaf of the model gives.
        It has no fields, so every path on it is an error; the overloads that return it are
        marked deprecated, so that strict pyright reports the filter itself."""

        __getattr__: None  # type: ignore[misc, assignment]  # pyright: ignore[reportIncompatibleMethodOverride]

    class Parts(Protocol[_Pp, _Np, _Pb, _Nb, _Pc, _Nc, _Pi, _Ni, _Rest, _Whole, _Coll, _Pl, _Nl, _Ppl]):
        """For type checkers only: what a generated State class says about its filtered parts.

        pyright has no plugin, so ``nnx.state(model, nnx.Param)`` can only be typed precisely
        by an overload that reads the answer off the model's State class. A State class that
        ``nnx.stubgen`` writes declares, for each built-in kind, the State class of the leaves
        that kind's filter keeps (``__nnx_params__``) and of the rest (``__nnx_not_params__``),
        the rest after ``nnx.Param`` and ``nnx.BatchStat`` together, itself, and the literal
        collection names its leaves are in (``str`` when some part is unknown). The overloads
        of ``split``/``state`` in ``nnx.graph`` match on these; a part with no leaf is
        ``NoState``.
        """

        @property
        def __nnx_params__(self) -> _Pp: ...
        @property
        def __nnx_not_params__(self) -> _Np: ...
        @property
        def __nnx_batch_stats__(self) -> _Pb: ...
        @property
        def __nnx_not_batch_stats__(self) -> _Nb: ...
        @property
        def __nnx_cache__(self) -> _Pc: ...
        @property
        def __nnx_not_cache__(self) -> _Nc: ...
        @property
        def __nnx_intermediates__(self) -> _Pi: ...
        @property
        def __nnx_not_intermediates__(self) -> _Ni: ...
        @property
        def __nnx_not_params_batch_stats__(self) -> _Rest: ...
        @property
        def __nnx_whole__(self) -> _Whole: ...
        # A parameter, not a property: the literal names bound the filter from above, so a
        # name outside them does not widen the solution to fit.
        def __nnx_collections__(self, name: _Coll, /) -> None: ...
        # ``nnx.LoRAParam``, a kind of Param: its part, the rest, and the Params that are not
        # LoRA weights (what ``nnx.Param`` keeps after ``nnx.LoRAParam`` took its share).
        @property
        def __nnx_lora__(self) -> _Pl: ...
        @property
        def __nnx_not_lora__(self) -> _Nl: ...
        @property
        def __nnx_params_not_lora__(self) -> _Ppl: ...
