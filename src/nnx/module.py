"""``ModuleBase``: the core of ``nnx.Module``.

A module is a plain Python object: assign submodules, cells, arrays and
configuration in ``__init__``, mutate them whenever you like, share a
submodule or a cell between several parents, build cycles, replace a layer by
another (model surgery). Nothing here forbids what Python allows; the graph
layer is what turns such an object into a ``(GraphDef, State)`` pair.

``nnx.Module`` (in ``nnx.seed_compat``) adds the seeds' older idioms on top of
this class; use ``nnx.Module`` as the base of your own modules.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterator, TypeVar

import jax
import jax.numpy as jnp

from nnx.containers import Dict, List
from nnx.markers import MARKS
from nnx.objects import Key, Object, iter_submodules
from nnx.variables import Perturbation, Variable

M = TypeVar("M", bound="ModuleBase")
A = TypeVar("A")


class ModuleBase(Object):
    """Base class of modules: stateful, mutable, shareable Python objects."""

    def iter_modules(self) -> Iterator[tuple[tuple[Key, ...], ModuleBase]]:
        """Every module reachable from this one (itself first), once each, with its path."""
        for path, node in iter_submodules(self):
            if isinstance(node, ModuleBase):
                yield path, node

    def set_attributes(self, *types: type[Any], raise_if_not_found: bool = True, **attributes: Any) -> None:
        """Set ``attributes`` on every submodule that has them (optionally only of ``types``).

        ``model.set_attributes(deterministic=True)`` flips every Dropout at once.
        """
        found: set[str] = set()
        for _, module in self.iter_modules():
            if types and not isinstance(module, types):
                continue
            for name, value in attributes.items():
                if hasattr(module, name):
                    setattr(module, name, value)
                    found.add(name)
        missing = sorted(set(attributes) - found)
        if raise_if_not_found and missing:
            raise ValueError(
                f"set_attributes: Could not find at least one instance of the following attributes: "
                f"{missing} in {type(self).__name__} or its submodules (check the spelling); "
                "pass raise_if_not_found=False to ignore them."
            )

    def train(self, **attributes: Any) -> None:
        """Training mode: ``deterministic=False`` and ``use_running_average=False`` everywhere."""
        self.set_attributes(
            deterministic=False, use_running_average=False, **attributes, raise_if_not_found=False
        )

    def eval(self, **attributes: Any) -> None:
        """Evaluation mode: ``deterministic=True`` and ``use_running_average=True`` everywhere."""
        self.set_attributes(deterministic=True, use_running_average=True, **attributes, raise_if_not_found=False)

    def sow(
        self,
        kind: type[Variable[Any]],
        name: str,
        value: Any,
        reduce_fn: Callable[[Any, Any], Any] = lambda acc, x: (*acc, x),
        init_fn: Callable[[], Any] = tuple,
    ) -> None:
        """Record ``value`` in a ``kind`` cell named ``name`` (a tuple of values by default).

        ``self.sow(nnx.Intermediate, "features", h)``; collect later with
        ``nnx.pop(model, nnx.Intermediate)``.
        """
        current = self.__dict__.get(name)
        if isinstance(current, Variable):
            cell: Variable[Any] = current  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to Variable[Unknown]
            if not isinstance(cell, kind):
                raise ValueError(
                    f"{type(self).__name__}.sow: expected attribute {name!r} to be of type {kind.__name__}, "
                    f"but it holds a {type(cell).__name__}; sow under another name."
                )
            cell.value = reduce_fn(cell.value, value)
        elif current is None and name not in type(self).__nnx_fields__:
            setattr(self, name, kind(reduce_fn(init_fn(), value)))
        else:
            raise ValueError(
                f"{type(self).__name__}.sow: expected attribute {name!r} to be a Variable, got "
                f"{type(current).__name__}; sow under another name."
            )

    def perturb(self, name: str, value: A, kind: type[Variable[Any]] = Perturbation) -> A:
        """``value`` plus this module's ``kind`` cell ``name`` (zeros, made on first use).

        Differentiating with respect to that cell differentiates with respect to
        ``value`` at this point of the forward pass. Collect the zero cells with
        ``_, perturbations = nnx.capture(model, nnx.Perturbation)(x)``, then inside
        the loss run ``nnx.capture(model, nnx.Intermediate, init=perturbations)(x)``
        and take ``nnx.grad`` with respect to ``perturbations``. Use the returned value.
        """
        current = self.__dict__.get(name)
        if current is None and name not in type(self).__nnx_fields__:
            setattr(self, name, kind(jax.tree.map(jnp.zeros_like, value)))
            return value
        if not isinstance(current, kind):
            raise ValueError(
                f"{type(self).__name__}.perturb: expected attribute {name!r} to be of type {kind.__name__}, "
                f"got {type(current).__name__}; perturb under another name."
            )
        cell: Variable[Any] = current  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to Variable[Unknown]
        added: A = jax.tree.map(operator.add, value, cell.get_value())
        return added

    def __repr__(self) -> str:
        return render(self)


def render(value: Any) -> str:
    """A readable, indented text tree of a graph node: arrays as ``dtype[shape]``,
    cells as ``Kind(dtype[shape], metadata)``, and a node reached a second time
    (shared module or cell, or a cycle) as ``<shared Kind at path>``."""
    return _render(value, (), {}, 0)


def describe_array(value: Any) -> str:
    """``float32[2, 3]`` for an array, a key array (``key<fry>[]``) or a ShapeDtypeStruct."""
    return f"{getattr(value, 'dtype', '')}{list(value.shape)}"


def _render(value: Any, path: tuple[Key, ...], seen: dict[int, tuple[Key, ...]], depth: int) -> str:
    # pyright narrows the Any ``value`` by isinstance to List[Unknown] (...): each branch
    # binds the narrowed value to a typed name.
    pad = "  " * (depth + 1)
    if isinstance(value, (Object, List, Dict, Variable)):
        node: Object | List[Any] | Dict[Any, Any] | Variable[Any] = value  # pyright: ignore[reportUnknownVariableType]
        if id(node) in seen:
            where = ".".join(map(str, seen[id(node)])) or "<root>"
            return f"<shared {type(node).__name__} at {where}>"
        seen[id(node)] = path
    if isinstance(value, Object):
        items = sorted(kv for kv in value.__dict__.items() if kv[0] != MARKS)
        inner = "".join(f"{pad}{k}={_render(v, (*path, k), seen, depth + 1)},\n" for k, v in items)
        return f"{type(value).__name__}(\n{inner}{'  ' * depth})" if inner else f"{type(value).__name__}()"
    if isinstance(value, List) or type(value) is tuple:  # pyright: ignore[reportUnknownArgumentType]
        seq: List[Any] | tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
        open_, close = ("[", "]") if isinstance(seq, list) else ("(", ")")
        inner = "".join(f"{pad}{_render(v, (*path, i), seen, depth + 1)},\n" for i, v in enumerate(seq))
        return f"{open_}\n{inner}{'  ' * depth}{close}" if inner else f"{open_}{close}"
    if isinstance(value, Dict):
        entries: Dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        inner = "".join(f"{pad}{k!r}: {_render(v, (*path, k), seen, depth + 1)},\n" for k, v in entries.items())
        return f"{{\n{inner}{'  ' * depth}}}" if inner else "{}"
    if isinstance(value, Variable):
        return repr(value)  # pyright: ignore[reportUnknownArgumentType]  # Variable[Unknown]
    if getattr(value, "shape", None) is not None and hasattr(value, "dtype"):
        kind = "Array" if isinstance(value, jax.Array) else type(value).__name__
        return f"{kind}({describe_array(value)})"
    return repr(value)
