"""``nnx.jit_partial``: ``nnx.jit`` with its first arguments bound once.

A training step is usually called with the same model and optimizer every
time and new data each time::

    step = nnx.jit_partial(train_step, model, optimizer)
    loss = step(x, y)              # train_step(model, optimizer, x, y), compiled

The bound arguments stay the caller's objects: each call reads their current
state (changing a parameter does not recompile) and writes the function's
updates back into them, exactly as ``nnx.jit(train_step)(model, optimizer, x, y)``
would -- it is that call, with the arguments filled in. ``in_shardings``,
``static_argnums`` and ``donate_argnums`` count the bound arguments first, as
positions of ``fun``.

``step.lower(x, y).compile()`` gives a compiled function of the remaining
arguments that also lands the updates in the bound objects.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from nnx.modes import ensure_tree, tree_for
from nnx.transforms.jit import JitWrapped
from nnx.transforms.lift import FrameDef

R = TypeVar("R")


class JitPartial(Generic[R]):
    """``fun`` compiled with ``nnx.jit`` and its first arguments bound; call it with the rest."""

    def __init__(self, fun: Callable[..., R], bound: tuple[Any, ...], tree: str | None, jit_kwargs: dict[str, Any]) -> None:
        self._jit: JitWrapped[..., R] = JitWrapped(fun, **jit_kwargs)
        self._jit._tree = tree  # a tree-mode error names nnx.jit_partial, what the caller wrote
        self._bound = bound

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self._jit(*self._bound, *args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> LoweredPartial[R]:
        """``jax.jit(...).lower`` for the bound arguments followed by ``args``."""
        frame, dyn, jitted = self._jit._frame((*self._bound, *args), kwargs)
        return LoweredPartial(self, frame.framedef, jitted.lower(frame.values(), *dyn))


class LoweredPartial(Generic[R]):
    """A lowered ``jit_partial`` call: ``.compile()`` it, or read jax's ``.as_text()`` etc."""

    def __init__(self, owner: JitPartial[R], framedef: FrameDef, lowered: Any) -> None:
        self._owner = owner
        self._framedef = framedef
        self._lowered = lowered

    def compile(self) -> CompiledPartial[R]:
        """The compiled call of the remaining arguments."""
        return CompiledPartial(self._owner, self._framedef, self._lowered.compile())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lowered, name)  # as_text, cost_analysis, ...


class CompiledPartial(Generic[R]):
    """A compiled ``jit_partial`` call; calling it lands the updates like the uncompiled one."""

    def __init__(self, owner: JitPartial[R], framedef: FrameDef, compiled: Any) -> None:
        self._owner = owner
        self._framedef = framedef
        self._compiled = compiled

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        owner = self._owner
        frame, dyn, _ = owner._jit._frame((*owner._bound, *args), kwargs)
        if frame.framedef != self._framedef:
            raise ValueError(
                "nnx.jit_partial: the compiled function was lowered for arguments of another structure "
                "(other shapes of modules, other static values); lower and compile it again for these."
            )
        landing, new, out = self._compiled(frame.values(), *dyn)
        result: R = frame.land(landing, new, out)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._compiled, name)  # memory_analysis, cost_analysis, ...


def jit_partial(
    fun: Callable[..., R], *bound: Any, graph: bool | None = None, graph_updates: bool | None = None, **jit_kwargs: Any
) -> JitPartial[R]:
    """``nnx.jit(fun)`` with ``bound`` as its first arguments: ``jit_partial(f, model)(x)``
    is ``nnx.jit(f)(model, x)``. Other keywords are ``nnx.jit``'s, ``graph`` and
    ``graph_updates`` among them."""
    tree = tree_for("nnx.jit_partial", graph, graph_updates)
    if tree is not None:  # the bound arguments are known now: check them now, as Flax does
        ensure_tree([((f"args[{k}]",), arg) for k, arg in enumerate(bound)], tree)
    return JitPartial(fun, bound, tree, jit_kwargs)
