"""``@nnx.dataclass``: an opt-in generated ``__init__`` for declarative modules.

.. code-block:: python

    @nnx.dataclass
    class Affine(nnx.Module):
        w: jax.Array = nnx.param()
        b: jax.Array = nnx.param()
        name: str = nnx.static()

    layer = Affine(jnp.ones((2, 2)), jnp.zeros((2,)), "head")

The decorator carries ``dataclass_transform`` (PEP 681), so mypy and pyright
check the generated constructor's parameters against the declared fields.

Why it is opt-in and not on ``nnx.Module`` itself: with ``dataclass_transform``
on the base class, both checkers synthesise an ``__init__`` for *every*
subclass from its annotations, and a subclass that writes its own
``__init__(self, din, dout, *, rngs)`` (the common case) is then reported as
an incompatible override, or its declared fields as missing constructor
arguments. Modules with a hand-written ``__init__`` must not pay for the few
that want a generated one.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from typing_extensions import dataclass_transform

from nnx.data import data
from nnx.fields import _NO_DEFAULT, Field, batch_stat, param, ref, static, variable

C = TypeVar("C", bound=type[Any])


def _field_names(cls: type[Any]) -> list[str]:
    """Annotated names in definition order, base classes first, ``ClassVar`` excluded."""
    names: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            spelled = annotation if isinstance(annotation, str) else repr(annotation)
            if not name.startswith("_") and "ClassVar" not in spelled:
                names[name] = None
    return list(names)


@dataclass_transform(field_specifiers=(param, batch_stat, variable, ref, static, data))
def dataclass(cls: C) -> C:
    """Give ``cls`` an ``__init__`` taking each annotated field (declared fields first
    in definition order); a plain class-level value is that parameter's default."""
    if "__init__" in vars(cls):
        raise TypeError(
            f"@nnx.dataclass: {cls.__name__} defines its own __init__; remove it or the decorator."
        )
    parameters: list[inspect.Parameter] = []
    for name in _field_names(cls):
        default = inspect.getattr_static(cls, name, inspect.Parameter.empty)
        if isinstance(default, Field):  # a declared field: its default= if it has one
            default = inspect.Parameter.empty if default.default is _NO_DEFAULT else default.default
        parameters.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    try:
        signature = inspect.Signature(parameters)
    except ValueError as e:  # a field without default after one with a default
        raise TypeError(f"@nnx.dataclass: {cls.__name__}: {e}; give the later fields defaults too.") from None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, value)
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    __init__.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by inspect
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *parameters]
    )
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__
    return cls
