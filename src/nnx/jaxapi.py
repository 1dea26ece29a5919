"""Typed doors to the JAX functions whose own annotations are partial.

mypy and pyright (strict) see parts of ``jax.eval_shape``, ``jax.jit``,
``PartitionSpec``, ``ShapeDtypeStruct`` ... as untyped. Rather than scatter
ignores over every caller, the sharding, checkpoint and tabulate modules call
them (and the transforms call jit, vmap, scan ...) through these wrappers,
whose signatures say what the code relies on.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar, cast

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec, Sharding

T = TypeVar("T")


def partition_spec(*axes: Any) -> PartitionSpec:
    """``PartitionSpec(*axes)``."""
    return PartitionSpec(*axes)  # type: ignore[no-untyped-call]  # untyped in jax


def shape_dtype(shape: tuple[int, ...], dtype: Any, sharding: Sharding | None = None) -> jax.ShapeDtypeStruct:
    """``jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)``."""
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)  # type: ignore[no-untyped-call]  # untyped in jax


def eval_shape(fn: Callable[..., T], *args: Any) -> T:
    """``jax.eval_shape(fn, *args)``: the output's structure with abstract leaves."""
    out: T = jax.eval_shape(fn, *args)  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax
    return out


def jit_call(fn: Callable[[], T], out_shardings: Any) -> T:
    """``jax.jit(fn, out_shardings=out_shardings)()``."""
    jitted = cast("Callable[[], T]", jax.jit(fn, out_shardings=out_shardings))  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax
    return jitted()


def sharding_constraint(x: T, shardings: Any) -> T:
    """``jax.lax.with_sharding_constraint(x, shardings)``."""
    out: T = jax.lax.with_sharding_constraint(x, shardings)  # type: ignore[no-untyped-call]  # pyright: ignore[reportUnknownMemberType]  # untyped in jax
    return out


def device_put(x: Any, sharding: Any = None) -> jax.Array:
    """``jax.device_put(x, sharding)`` (``jnp.asarray(x)`` without a sharding)."""
    if sharding is None:
        return jnp.asarray(x)
    return cast("jax.Array", jax.device_put(x, sharding))  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax


def default_device() -> Any:
    """The first device of the default backend."""
    return jax.devices()[0]  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]  # Device is partially typed


def is_key_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is a typed PRNG key dtype (``key<fry>``)."""
    return bool(jnp.issubdtype(dtype, jax.dtypes.prng_key))


def key_data_spec(shape: tuple[int, ...], dtype: Any) -> jax.ShapeDtypeStruct:
    """The shape/dtype of the raw data of a key array of ``shape`` and key ``dtype``
    (its shape plus the implementation's own trailing axes, ``uint32``)."""
    # An abstract evaluation gives a ShapeDtypeStruct where the function gives an Array.
    return cast(jax.ShapeDtypeStruct, eval_shape(jax.random.key_data, shape_dtype(shape, dtype)))


def wrap_key_data(data: Any, impl: str) -> jax.Array:
    """``jax.random.wrap_key_data(data, impl=impl)``."""
    return cast("jax.Array", jax.random.wrap_key_data(jnp.asarray(data), impl=impl))


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list[Any], Any]:
    """``jax.tree.flatten(tree, is_leaf)``."""
    return cast("tuple[list[Any], Any]", jax.tree.flatten(tree, is_leaf))  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax


def tree_unflatten(treedef: Any, leaves: Iterable[Any]) -> Any:
    """``jax.tree.unflatten(treedef, leaves)``."""
    return jax.tree.unflatten(treedef, leaves)  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax


# -- the transforms (nnx.transforms) ---------------------------------------------

Fn = Callable[..., Any]


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


def process_index() -> int:
    """``jax.process_index()``: this process's number under ``jax.distributed`` (0 alone)."""
    index: int = jax.process_index()  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax
    return index


def process_count() -> int:
    """``jax.process_count()``: how many processes take part (1 alone)."""
    count: int = jax.process_count()  # pyright: ignore[reportUnknownMemberType]  # partially typed in jax
    return count
