"""Gradient checks for layers: ``jax.test_util.check_grads`` in float64.

Finite differences in float32 are too noisy for second-order checks, so the
layer's parameters and the input are cast to float64 under ``jax.enable_x64``;
layers compute in the promoted dtype, so the whole forward pass runs in float64.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.test_util import check_grads  # pyright: ignore[reportUnknownVariableType]  # unannotated in jax

import nnx


def check_layer_grads(
    layer: Any, *inputs: jax.Array, call: Callable[..., jax.Array] | None = None, order: int = 2
) -> None:
    """Check first/second derivatives of ``layer(*inputs)`` w.r.t. its Params and inputs."""
    node: nnx.Module = layer  # typed: a model typed Any matches the filter overloads' deprecated ones
    graphdef, params, rest = nnx.split(node, nnx.Param, ...)
    with jax.enable_x64(True):
        to64: Callable[[Any], Any] = lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a
        params64 = jax.tree.map(to64, params)
        inputs64 = tuple(to64(x) for x in inputs)

        def f(params: nnx.State[Any], *xs: jax.Array) -> jax.Array:
            model: Any = nnx.merge(graphdef, params, rest)
            out = call(model, *xs) if call is not None else model(*xs)
            return jnp.tanh(out)  # a nonlinearity so second derivatives are not trivially zero

        check_grads(f, (params64, *inputs64), order=order, modes=("fwd", "rev"))  # type: ignore[no-untyped-call]  # jax.test_util is unannotated
