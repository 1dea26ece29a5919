"""``nnx.Optimizer``: an optax optimizer whose state lives in the object graph.

``optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)`` keeps

* ``optimizer.step``: an ``OptState`` cell counting the updates;
* ``optimizer.opt_state``: optax's state, every array in an ``OptState`` cell,
  laid out as nested ``nnx.Dict``s that follow optax's own structure (e.g.
  ``opt_state[0]["mu"]["linear.kernel"]``), so ``nnx.split``, ``nnx.state``
  and the transforms find and carry it like any other state;
* ``optimizer.model``: the model it trains (a shared reference, so seed 001's
  ``optimizer.update(grads)`` knows what to update).

``optimizer.update(model, grads)`` runs one optax step and writes the new
parameters into the model's cells and the new optimizer state into its own
cells, in place. Because everything is cells, this works eagerly, inside
``jax.jit`` after ``nnx.merge``, and under ``nnx.jit``, which carries the
changed cells back to the caller's objects.
"""

from __future__ import annotations

from typing import Any, cast, overload

import jax
import jax.numpy as jnp
from jax import lax
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

from nnx.containers import Dict
from nnx.filters import Filter, Key, to_filter
from nnx.graph import state, update
from nnx.objects import Object
from nnx.state import State
from nnx.variables import Param, Variable


class OptState(Variable[Any], collection="opt_state"):
    """State of an optimizer: its step counter and every array of the optax state."""

    __slots__ = ()


def _key(entry: Any) -> Key:
    """One ``nnx`` path key from one JAX key-path entry."""
    for attr in ("idx", "name", "key"):
        if hasattr(entry, attr):
            key = getattr(entry, attr)
            return key if isinstance(key, (int, str)) else str(key)
    return str(entry)


def _flatten_with_paths(tree: Any) -> tuple[list[tuple[tuple[Any, ...], Any]], Any]:
    """``jax.tree_util.tree_flatten_with_path``, typed: ((key path, leaf) pairs, treedef)."""
    return jax.tree_util.tree_flatten_with_path(tree)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: PyTreeDef is untyped


class Optimizer(Object):
    """Trains the parts of ``model`` selected by ``wrt`` with the optax transformation ``tx``.

    ``wrt`` is any filter (``nnx.Param``, a ``LoRAParam`` kind, a path filter,
    ...); only those leaves get optimizer state and updates.
    """

    step: OptState
    opt_state: Dict[Key, Any]
    model: Object
    _opt_treedef: Any  # a jax PyTreeDef (untyped in jax)

    def __init__(self, model: Object, tx: optax.GradientTransformation, wrt: Filter = Param) -> None:
        self.model = model
        self.tx = tx
        self.wrt = wrt
        to_filter(wrt)  # fail now, naming the filter, if it is not one
        self.step = OptState(lax.full((), 0, jnp.uint32))
        params = state(model, wrt)
        if not params.paths:
            raise ValueError(
                f"nnx.Optimizer: the filter {wrt!r} selects no state of {type(model).__name__}; "
                "pass wrt= a filter that selects its trainable leaves (e.g. nnx.Param)."
            )
        self._store(tx.init(params))

    # -- optax state <-> cells --------------------------------------------------
    def _store(self, opt_state: Any) -> None:
        """Put every array of ``opt_state`` in a new ``OptState`` cell at its key path."""
        flat, treedef = _flatten_with_paths(opt_state)
        tree: dict[Key, Any] = {}
        paths: list[tuple[Key, ...]] = []
        for key_path, leaf in flat:
            path = tuple(_key(entry) for entry in key_path)
            node = tree
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = OptState(leaf)
            paths.append(path)
        self.opt_state = Dict(tree)
        self._opt_treedef = treedef
        self._opt_paths = tuple(paths)

    def _cells(self) -> list[OptState]:
        """The ``OptState`` cells of ``opt_state`` in optax's leaf order."""
        cells: list[OptState] = []
        for path in self._opt_paths:
            node: Any = self.opt_state
            for key in path:
                node = node[key]
            cells.append(node)
        return cells

    # -- the update --------------------------------------------------------------
    @overload
    def update(self, model: Object, grads: State[Any], /, **kwargs: Any) -> State[Any]: ...
    @overload
    def update(self, grads: State[Any], /, **kwargs: Any) -> State[Any]: ...
    def update(self, *args: Any, **kwargs: Any) -> State[Any]:  # type: ignore[misc]  # positional-only overloads, one *args implementation
        """One optimizer step, in place: ``optimizer.update(model, grads)``.

        The older ``optimizer.update(grads)`` updates ``optimizer.model``.
        ``grads`` is a State like ``nnx.state(model, wrt)`` (a State holding more,
        e.g. gradients of every Param when ``wrt`` selects a subset, is
        filtered down). Extra keyword arguments go to ``tx.update`` (e.g.
        ``value=loss`` for line-search transformations).
        """
        model, grads = self._arguments(args)
        params = state(model, self.wrt)
        if grads._layout != params._layout:
            grads = self._align(grads, params)
        cells = self._cells()
        opt_state = jax.tree_util.tree_unflatten(self._opt_treedef, [c.value for c in cells])  # pyright: ignore[reportUnknownMemberType]  # jax: PyTreeDef is untyped
        updates, new_opt_state = self.tx.update(grads, opt_state, params, **kwargs)
        update(model, cast("State[Any]", optax.apply_updates(params, updates)))
        for cell, value in zip(cells, jax.tree_util.tree_leaves(new_opt_state)):
            cell.value = value
        self.step.value = self.step.value + 1
        return cast("State[Any]", updates)

    def _arguments(self, args: tuple[Any, ...]) -> tuple[Object, State[Any]]:
        if len(args) == 1 and isinstance(args[0], State):
            return self.model, args[0]  # pyright: ignore[reportUnknownVariableType]
        if len(args) == 2 and isinstance(args[0], Object) and isinstance(args[1], State):
            return args[0], args[1]  # pyright: ignore[reportUnknownVariableType]
        got = ", ".join(type(a).__name__ for a in args)
        raise TypeError(
            f"Optimizer.update takes (model, grads) or (grads), with grads an nnx.State; got ({got}). "
            "Compute grads with nnx.grad(loss_fn)(model) or jax.grad over nnx.state(model, wrt)."
        )

    def _align(self, grads: State[Any], params: State[Any]) -> State[Any]:
        """``grads`` restricted to the paths of ``params`` (grads of more leaves than ``wrt``)."""
        narrowed: State[Any] = grads.filter(self.wrt)
        if narrowed.paths != params.paths:
            missing = [".".join(map(str, p)) for p in params.paths if p not in set(narrowed.paths)]
            raise ValueError(
                f"Optimizer.update: the gradients do not cover the state selected by wrt={self.wrt!r}; "
                f"missing {missing}. Take gradients with respect to (at least) the same filter."
            )
        return State._make(params._layout, narrowed.leaves)

    def __repr__(self) -> str:
        return f"Optimizer(step={int(self.step.value)}, wrt={self.wrt!r}, model={type(self.model).__name__})"


ModelAndOptimizer = Optimizer  # Flax 0.12's name for an optimizer that holds its model: ours always does
