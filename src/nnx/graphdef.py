"""``GraphDef``: the static half of a split module graph.

A GraphDef records everything that is not state: the type of every Object,
its static attributes, where containers and cells sit, and which nodes are
the *same* node reached twice (shared submodules, shared cells, cycles).
It is built from nested tuples, so it is immutable, hashable and cheap to
compare; its hash is computed once. It is also a pytree with no leaves, so it
can be returned from or passed through JAX transforms, or be a static
argument of ``jax.jit``.

Node descriptions (the tuples inside):

* ``("object", type, index, ((name, node), ...))``
* ``("list", index, (node, ...))`` / ``("dict", index, ((key, node), ...))``
* ``("tuple", (node, ...))``
* ``("var", kind, index, metadata)`` -- a cell; its value is the next state leaf
* ``("array",)`` -- a plain array attribute; its value is the next state leaf
* ``("ref", index)`` -- a node already described (sharing and cycles)
* ``("static", Static(value))``
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import jax

from nnx.state import Layout

if TYPE_CHECKING:
    from nnx.graph_nodes import NodeDef, NodeRef, VariableDef

M = TypeVar("M")


class Static:
    """A static attribute value inside a GraphDef, hashable even if the value is not."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: object) -> None:
        self.value: Any = value
        try:
            self._hash = hash((type(value), value))
        except TypeError:
            self._hash = hash((type(value), repr(value)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Static):
            return False
        a, b = self.value, other.value
        if a is b:
            return True
        if type(a) is not type(b) or self._hash != other._hash:
            return False
        try:
            return bool(a == b)
        except Exception:
            return False

    def __repr__(self) -> str:
        return repr(self.value)


class GraphDef(Generic[M]):
    """The structure of a module graph: ``merge(graphdef, state)`` rebuilds the module."""

    __slots__ = ("node", "layout", "avals", "_hash", "builder")

    def __init__(self, node: tuple[Any, ...], layout: Layout, avals: tuple[Any, ...] | None = None) -> None:
        self.node = node
        self.layout = layout  # the full State layout this graph splits into
        # Each leaf's shape and dtype as the split that made this GraphDef saw them
        # (a jax aval, a NumPy ``(shape, dtype)``, or None), so that ``merge`` can
        # refuse a State of other shapes. Not part of equality: under ``jax.vmap``
        # the same structure is seen with other shapes.
        self.avals = avals
        # Hashed on first use: a tuple does not cache its hash, and most GraphDefs
        # (one per structural change) are never hashed or compared.
        self._hash: int | None = None
        self.builder: Any = None  # the compiled builder of ``merge`` (see nnx.graph)

    @property
    def type(self) -> type[Any]:
        """The type of the root node."""
        tag = self.node[0]
        if tag == "object":
            return self.node[1]  # type: ignore[no-any-return]
        return {"list": list, "dict": dict, "tuple": tuple}.get(tag, object)

    @property
    def nodes(self) -> list[NodeDef | VariableDef | NodeRef]:
        """The graph's nodes depth first, as ``NodeDef`` / ``VariableDef`` / ``NodeRef``
        records (see ``nnx.graph_nodes``)."""
        from nnx.graph_nodes import records  # imported on use: an inspection aid, off the hot paths

        return list(records(self.node))

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(self.node)
        return h

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, GraphDef) or hash(self) != hash(other):  # pyright: ignore[reportUnknownArgumentType]
            return False
        try:
            return bool(self.node == other.node)
        except RecursionError:  # a very deep graph: compare without recursion
            return _same(self.node, other.node)

    def __repr__(self) -> str:
        return f"GraphDef({_describe(self.node, 0)})"


def _same(a: Any, b: Any) -> bool:
    """``a == b`` for nested tuples of any depth, with an explicit stack."""
    pending: list[tuple[Any, Any]] = [(a, b)]
    while pending:
        x, y = pending.pop()
        if x is y:
            continue
        x_tuple, y_tuple = type(x) is tuple, type(y) is tuple
        if x_tuple and y_tuple:
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y))
        elif x_tuple or y_tuple or x != y:
            return False
    return True


def _describe(node: tuple[Any, ...], depth: int) -> str:
    """The text of ``node`` in a GraphDef's repr, indented as at ``depth``.

    Works through a stack of pending pieces (text, or a node still to describe)
    instead of recursing, so a GraphDef of any depth has a repr.
    """
    out: list[str] = []
    pending: list[str | tuple[tuple[Any, ...], int]] = [(node, depth)]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        sub, level = item
        pieces = _pieces(sub, level)
        if isinstance(pieces, str):
            out.append(pieces)
        else:
            pending.extend(reversed(pieces))
    return "".join(out)


def _pieces(node: tuple[Any, ...], depth: int) -> str | list[str | tuple[tuple[Any, ...], int]]:
    """A leaf-like node's text, or a container's pieces: its text with its children to describe."""
    tag = node[0]
    if tag in ("object", "list", "dict", "tuple"):
        pieces: list[str | tuple[tuple[Any, ...], int]] = []
        if tag == "object":
            pad = "  " * (depth + 1)
            pieces.append(f"{node[1].__name__}#{node[2]}(")
            for name, sub in node[3]:
                pieces += [f"\n{pad}{name}=", (sub, depth + 1), ","]
            pieces.append(("\n" + "  " * depth if node[3] else "") + ")")
            return pieces
        children = node[1] if tag == "tuple" else node[2]
        opening, closing = {"list": ("[", "]"), "dict": ("{", "}"), "tuple": ("(", ",)")}[tag]
        pieces.append(opening)
        for position, child in enumerate(children):
            if position:
                pieces.append(", ")
            if tag == "dict":
                pieces.append(f"{child[0]!r}: ")
                child = child[1]
            pieces.append((child, depth + 1))
        pieces.append(closing)
        return pieces
    if tag == "var":
        return f"{node[1].__name__}#{node[2]}"
    if tag == "ref":
        return f"<shared #{node[1]}>"
    if tag == "array":
        return "<array>"
    return repr(node[1])


jax.tree_util.register_pytree_node(  # pyright: ignore[reportUnknownMemberType]  # jax: unsolved KeyEntry
    GraphDef,
    lambda g: ((), g),
    lambda g, _: g,
)
