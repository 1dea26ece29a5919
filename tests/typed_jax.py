"""jax's transformations with the types of what they wrap, for tests that use plain jax.

jax types ``jax.jit``'s wrapped call, ``jax.grad``/``value_and_grad`` and
``jax.tree.map`` loosely (bare ``Callable`` parameters, unannotated returns),
which pyright (strict) reports at every use. These wrappers state the types
once, so the narrow ignores live here and not on every test line.
"""

from typing import Any, Callable, ParamSpec, TypeVar

import jax

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A")
X = TypeVar("X")
C = TypeVar("C")
T = TypeVar("T")


def jit(fn: Callable[P, R]) -> Callable[P, R]:
    """``jax.jit(fn)``, typed as ``fn``."""
    return jax.jit(fn)  # pyright: ignore[reportUnknownMemberType]  # jax: fun is a bare Callable


def vmap(fn: Callable[P, R]) -> Callable[P, R]:
    """``jax.vmap(fn)`` over the leading axis, typed as ``fn`` (batched arrays are arrays)."""
    return jax.vmap(fn)


def value_and_grad(fn: Callable[[A], jax.Array]) -> Callable[[A], tuple[jax.Array, A]]:
    """``jax.value_and_grad(fn)``: the gradient has the argument's type (a State, an array)."""
    return jax.value_and_grad(fn)  # pyright: ignore[reportUnknownMemberType]  # jax: fun is a bare Callable


def grad_with_aux(fn: Callable[[A], tuple[jax.Array, X]]) -> Callable[[A], tuple[A, X]]:
    """``jax.grad(fn, has_aux=True)``."""
    return jax.grad(fn, has_aux=True)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # jax: bare Callable


def tree_map(fn: Callable[..., Any], tree: T, *rest: Any) -> T:
    """``jax.tree.map``: the result has the structure, hence the type, of ``tree``."""
    result: T = jax.tree.map(fn, tree, *rest)
    return result


def scan(fn: Callable[[C, X], tuple[C, R]], init: C, xs: X) -> tuple[C, R]:
    """``jax.lax.scan`` without length/reverse."""
    return jax.lax.scan(fn, init, xs)
