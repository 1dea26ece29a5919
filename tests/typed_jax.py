"""``jax.jit`` with the wrapped function's signature, for tests that use plain jax.

jax types a jitted function's call as returning an unannotated value, which
pyright (strict) reports at every use; this keeps the narrow ignore in one place.
"""

from typing import Callable, ParamSpec, TypeVar

import jax

P = ParamSpec("P")
R = TypeVar("R")


def jit(fn: Callable[P, R]) -> Callable[P, R]:
    """``jax.jit(fn)``, typed as ``fn``."""
    return jax.jit(fn)  # pyright: ignore[reportUnknownMemberType]  # jax: fun is a bare Callable
