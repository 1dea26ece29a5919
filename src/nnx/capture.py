"""``nnx.capture``: call a module and collect what it sowed.

``self.sow(nnx.Intermediate, "features", h)`` records values in cells of the
module. ``nnx.capture(model, nnx.Intermediate)(x)`` calls ``model(x)`` and
returns ``(output, intermediates)``: the recorded cells of that kind, popped
out of the model (so the next call starts clean) as a ``State``::

    y, feats = nnx.capture(model, nnx.Intermediate)(x)
    feats["encoder"]["features"]      # the tuple of values sowed there

``fn`` may be a module (its ``__call__``), a bound method of a module, or a
function whose first argument is the module. With several kinds the result
is ``(output, state_1, state_2, ...)``. The module is left as the call found
it: cells sowed (or perturbed) during the call that were not asked for are
dropped too.

Two extras (Flax 0.12):

* ``method_outputs=nnx.Intermediate`` records the output of every public
  method (and ``__call__``) of every module in the graph, under the method's
  name: ``feats["encoder"]["__call__"]``;
* ``init=perturbations`` puts cells into the module before the call, at their
  paths: with ``module.perturb(name, x)`` this gives the gradient with respect
  to intermediate values::

      _, perturbations = nnx.capture(model, nnx.Perturbation)(x)   # zeros

      def loss(model, perturbations, x):
          return nnx.capture(model, nnx.Intermediate, init=perturbations)(x)

      (grads, x_grads), feats = nnx.grad(loss, argnums=(0, 1), has_aux=True)(model, perturbations, x)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Generator, cast

from nnx.graph import pop, state
from nnx.module import ModuleBase
from nnx.objects import Object
from nnx.state import State
from nnx.variables import Intermediate, Perturbation, Variable

Kind = type[Variable[Any]]
Path = tuple[Any, ...]


def capture(
    fn: Callable[..., Any] | Kind,
    /,
    *kinds: Kind,
    init: State[Any] | None = None,
    method_outputs: Kind | None = None,
) -> Callable[..., Any]:
    """``fn`` returning ``(output, *states)``, one State per kind, popped from the module.

    ``nnx.capture(nnx.Intermediate)(fn)`` (a kind first) is the decorator form.
    ``method_outputs=Kind`` also records every method's output under its name
    (in that kind's State, which is added to ``kinds`` if missing); ``init=state``
    plants ``state``'s cells in the module first (see the module docstring).
    """
    if isinstance(fn, type) and issubclass(fn, Variable):
        first: Kind = fn  # pyright: ignore[reportUnknownVariableType]  # narrowed to type[Variable[Unknown]]

        def decorate(actual: Callable[..., Any]) -> Callable[..., Any]:
            return capture(actual, first, *kinds, init=init, method_outputs=method_outputs)

        return decorate
    if method_outputs is not None and method_outputs not in kinds:
        kinds = (*kinds, method_outputs)
    if not kinds:
        raise TypeError("nnx.capture needs at least one Variable kind to collect, e.g. nnx.capture(model, nnx.Intermediate).")
    call = cast(Callable[..., Any], fn)  # a kind was handled above
    bound = _module_of(call)

    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        module = bound if bound is not None else (args[0] if args else None)
        if not isinstance(module, Object):
            raise TypeError(
                "nnx.capture: cannot tell which module to collect from: pass a module, a bound method "
                f"of one, or a function whose first argument is the module (got {type(module).__name__})."
            )
        before = set(state(module, Intermediate).paths)
        planted: set[Path] = _plant(module, init, kinds) if init is not None else set()
        outputs: dict[int, dict[str, list[Any]]] = {}
        recording = _recording(module, outputs) if method_outputs is not None else contextlib.nullcontext()
        try:
            with recording:
                out: Any = fn(*args, **kwargs)
        finally:
            if planted:  # cells planted only to be read: they go before the asked-for kinds are popped
                pop(module, lambda path, _: path in planted)
        states: Any = pop(module, *kinds)  # one State, or a tuple of them for several kinds
        popped: list[State[Any]] = list(states) if len(kinds) > 1 else [states]
        pop(module, lambda path, value: isinstance(value, Intermediate) and path not in before)
        if method_outputs is not None:
            at = kinds.index(method_outputs)
            popped[at] = State.merge(popped[at], _method_state(module, outputs, method_outputs))
        return (out, *popped)

    return wrapper


def _module_of(fn: object) -> Object | None:
    """The module ``fn`` is (or is a bound method of); None for a plain function."""
    if inspect.ismethod(fn):
        owner: object = fn.__self__
        return owner if isinstance(owner, Object) else None
    return fn if isinstance(fn, Object) else None


def _plant(module: Object, init: State[Any], kinds: tuple[Kind, ...]) -> set[Path]:
    """Put ``init``'s cells into ``module`` at their paths; the paths of those of a kind
    not being captured (to be dropped after the call)."""
    planted: set[Path] = set()
    for path, leaf in init.flat_state().items():
        owner: Any = module
        for key in path[:-1]:
            owner = getattr(owner, str(key)) if isinstance(owner, Object) else _item(owner, key)
        name = path[-1]
        cell: Variable[Any] = leaf if isinstance(leaf, Variable) else Perturbation(leaf)  # pyright: ignore[reportUnknownVariableType]
        current: object = owner.__dict__.get(str(name)) if isinstance(owner, Object) else _item(owner, name)
        if isinstance(current, Variable):
            existing: Variable[Any] = current  # pyright: ignore[reportUnknownVariableType]
            existing.value = cell.get_value()
            continue
        if isinstance(owner, Object):
            setattr(owner, str(name), cell)
        else:
            container: Any = owner
            container[name] = cell
        if type(cell) not in kinds:
            planted.add(path)
    return planted


def _item(container: Any, key: Any) -> Any:
    """``container[key]`` of an ``nnx.List``/``nnx.Dict`` on a State path (None if absent)."""
    try:
        return container[key]
    except (KeyError, IndexError):
        return None


@contextlib.contextmanager
def _recording(root: Object, outputs: dict[int, dict[str, list[Any]]]) -> Generator[None, None, None]:
    """While open, every public method and ``__call__`` defined by the classes of the
    modules under ``root`` appends its output to ``outputs[id(module)][name]`` (for those
    modules only: other instances of the classes are untouched)."""
    targets = {id(m) for _, m in root.iter_modules()} if isinstance(root, ModuleBase) else {id(root)}
    classes = {type(m) for _, m in root.iter_modules()} if isinstance(root, ModuleBase) else {type(root)}
    patched: list[tuple[type[Any], str, Any]] = []
    try:
        for cls in classes:
            for name, method in list(vars(cls).items()):
                if (name == "__call__" or not name.startswith("_")) and _is_method(method):
                    setattr(cls, name, _recorder(name, method, targets, outputs))
                    patched.append((cls, name, method))
        yield
    finally:
        for cls, name, method in reversed(patched):
            setattr(cls, name, method)


def _is_method(attr: object) -> bool:
    """A plain function or a decorated one (``nnx.jit``) that binds like a method."""
    if isinstance(attr, (staticmethod, classmethod, property, type)) or getattr(attr, "_nnx_records", False):
        return False
    return inspect.isfunction(attr) or (callable(attr) and hasattr(type(attr), "__get__"))


def _recorder(
    name: str, method: Callable[..., Any], targets: set[int], outputs: dict[int, dict[str, list[Any]]]
) -> Callable[..., Any]:
    @functools.wraps(method)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        if id(self) in targets:
            outputs.setdefault(id(self), {}).setdefault(name, []).append(result)
        return result

    setattr(recorded, "_nnx_records", True)  # read by _is_method: never wrap twice
    return recorded


def _method_state(root: Object, outputs: dict[int, dict[str, list[Any]]], kind: Kind) -> State[Any]:
    """The recorded outputs as a State of ``kind`` cells: ``(*module path, method) -> tuple``."""
    modules = list(root.iter_modules()) if isinstance(root, ModuleBase) else [((), root)]
    flat: dict[Path, Any] = {}
    for path, module in modules:
        for name, values in outputs.get(id(module), {}).items():
            flat[(*path, name)] = kind(tuple(values))
    return State.from_flat_state(flat)
