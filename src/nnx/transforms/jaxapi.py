"""The ``jax`` functions the transforms call, with types the checkers can use.

JAX's own annotations leave parts of these signatures unknown to pyright in
strict mode (``PyTreeDef``, the callables the transforms return, ...). Rather
than silence that at every call site, this module states the types once.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, cast

import jax

TreeDef = Any  # jax's PyTreeDef
Fn = Callable[..., Any]


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list[Any], TreeDef]:
    """``jax.tree_util.tree_flatten``."""
    return cast("tuple[list[Any], TreeDef]", jax.tree_util.tree_flatten(tree, is_leaf=is_leaf))  # pyright: ignore[reportUnknownMemberType]


def tree_unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> Any:
    """``jax.tree_util.tree_unflatten``."""
    return jax.tree_util.tree_unflatten(treedef, leaves)  # pyright: ignore[reportUnknownMemberType]


def tree_map(f: Callable[[Any], Any], tree: Any) -> Any:
    """``jax.tree.map`` over one tree."""
    return jax.tree.map(f, tree)


def jit(fun: Fn, **kwargs: Any) -> Fn:
    """``jax.jit``."""
    return cast(Fn, jax.jit(fun, **kwargs))  # pyright: ignore[reportUnknownMemberType]


def vmap(fun: Fn, **kwargs: Any) -> Fn:
    """``jax.vmap``."""
    return jax.vmap(fun, **kwargs)


def checkpoint(fun: Fn, **kwargs: Any) -> Fn:
    """``jax.checkpoint``."""
    return jax.checkpoint(fun, **kwargs)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]


def value_and_grad(fun: Fn, **kwargs: Any) -> Fn:
    """``jax.value_and_grad``."""
    return cast(Fn, jax.value_and_grad(fun, **kwargs))  # pyright: ignore[reportUnknownMemberType]


def eval_shape(fun: Fn, *args: Any) -> Any:
    """``jax.eval_shape``."""
    return jax.eval_shape(fun, *args)  # pyright: ignore[reportUnknownMemberType]


def cond(pred: Any, true_fun: Fn, false_fun: Fn, *operands: Any) -> Any:
    """``jax.lax.cond``."""
    return cast(Any, jax.lax.cond(pred, true_fun, false_fun, *operands))  # pyright: ignore[reportUnknownMemberType]


def switch(index: Any, branches: list[Fn], *operands: Any) -> Any:
    """``jax.lax.switch``."""
    return cast(Any, jax.lax.switch(index, branches, *operands))  # pyright: ignore[reportUnknownMemberType]


def fori_loop(lower: Any, upper: Any, body: Fn, init: Any, *, unroll: int | bool | None = None) -> Any:
    """``jax.lax.fori_loop``."""
    return cast(Any, jax.lax.fori_loop(lower, upper, body, init, unroll=unroll))  # pyright: ignore[reportUnknownMemberType]


def while_loop(cond_fun: Fn, body: Fn, init: Any) -> Any:
    """``jax.lax.while_loop``."""
    return jax.lax.while_loop(cond_fun, body, init)


def scan(body: Fn, init: Any, xs: Any, **kwargs: Any) -> Any:
    """``jax.lax.scan``."""
    return jax.lax.scan(body, init, xs, **kwargs)
