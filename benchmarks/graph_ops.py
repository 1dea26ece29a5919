"""Cost of the graph operations per variable, beside jax.tree flatten/unflatten.

For models of 1, 10, 100 and 1000 layers (each layer: params w (4, 4) and
b (4,)), times nnx.split, nnx.state, nnx.merge and nnx.update in steady
state, and split right after a structural change ("cold"), against
jax.tree.flatten / jax.tree.unflatten of the same arrays held as a nested
dict. Everything is measured in the same process, best of several repeats.

Run: python benchmarks/graph_ops.py
"""

from __future__ import annotations

import timeit
from typing import Any, Callable

import jax
import jax.numpy as jnp

import nnx
from nnx import epoch


class Layer(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()

    def __init__(self, key: jax.Array) -> None:
        self.w = jax.random.normal(key, (4, 4))
        self.b = jnp.zeros((4,))


class Stack(nnx.Module):
    def __init__(self, n: int) -> None:
        self.layers = [Layer(k) for k in jax.random.split(jax.random.key(0), n)]


def per_variable_us(fn: Callable[[], Any], n_vars: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number // 4)
    best = min(timer.repeat(repeat=5, number=number)) / number
    return best * 1e6 / n_vars


def cold_split(model: Stack) -> None:
    epoch.bump()  # as after any structural change
    nnx.split(model)


def main() -> None:
    header = (
        f"{'layers':>6} {'flatten':>8} {'unflat':>8} | {'split':>7} {'state':>7} {'merge':>7} "
        f"{'update':>7} {'cold':>7} | {'split/fl':>8} {'state/fl':>8} {'merge/un':>8} "
        f"{'upd/un':>7} {'merge/fl+un':>11} {'upd/fl+un':>9}"
    )
    print("µs per variable (best of 5); ratios against the same-run jax.tree baseline")
    print(header)
    for n in (1, 10, 100, 1000):
        model = Stack(n)
        n_vars = 2 * n
        tree = {"layers": {i: {"w": layer.w, "b": layer.b} for i, layer in enumerate(model.layers)}}
        leaves, treedef = jax.tree.flatten(tree)
        graphdef, state = nnx.split(model)
        new_state = jax.tree.map(lambda x: x + 1, state)  # fresh arrays, as after a train step

        flatten = per_variable_us(lambda: jax.tree.flatten(tree), n_vars)
        unflatten = per_variable_us(lambda: jax.tree.unflatten(treedef, leaves), n_vars)
        split = per_variable_us(lambda: nnx.split(model), n_vars)
        state_ = per_variable_us(lambda: nnx.state(model), n_vars)
        merge = per_variable_us(lambda: nnx.merge(graphdef, state), n_vars)
        update = per_variable_us(lambda: nnx.update(model, new_state), n_vars)
        cold = per_variable_us(lambda: cold_split(model), n_vars)
        both = flatten + unflatten
        print(
            f"{n:>6} {flatten:8.3f} {unflatten:8.3f} | {split:7.3f} {state_:7.3f} {merge:7.3f} "
            f"{update:7.3f} {cold:7.3f} | {split / flatten:8.2f} {state_ / flatten:8.2f} "
            f"{merge / unflatten:8.2f} {update / unflatten:7.2f} {merge / both:11.2f} {update / both:9.2f}"
        )


if __name__ == "__main__":
    main()
