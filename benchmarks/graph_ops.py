"""Cost of the graph operations per variable, beside jax.tree flatten/unflatten.

For models of 1, 10, 100, 1000 and 10000 layers (each layer: params w (4, 4)
and b (4,)), and for a chain of 1000 nested submodules (each: one param and
its child), times nnx.split, nnx.state, nnx.merge and nnx.update in steady
state, and split after a structural change, against jax.tree.flatten /
jax.tree.unflatten of the same arrays held as a nested dict. Everything is
measured in the same process, best of several repeats, in CPU time of the
measuring thread (all of these run on it).

Two kinds of "cold" split:

* ``cold``: right after an anonymous ``epoch.bump()``, as after a structural
  change that could be anywhere (an ``nnx.pop``, a transform landing its
  changes): the cached walk is re-checked against its snapshot (the first
  such split walks and takes the snapshot; timing repeats many);
* ``real``: after a structural change *of this model* (an attribute of the
  root rebound to a new object): the root is walked again and the untouched
  subtrees are copied from the walk before (``nnx.rewalk``);
* ``deep``: the same change made to the middle layer (the middle link of the
  chain) instead: everything around it is walked again.

``floor`` is what merge cannot go below in CPython: a straight-line function
(generated once per model, like merge's builder) that creates one plain
object per module and one one-slot object per cell and stores their
attributes, with no checks; ``merge/floor`` is merge's cost over that.

Run: python benchmarks/graph_ops.py [--quick]   (--quick: fewer repeats, no 10000)
To compare two checkouts on one operation, see graph_ops_ab.py.
"""

from __future__ import annotations

import argparse
import time
import timeit
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import nnx
from nnx import epoch


class Layer(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()

    def __init__(self, w: jax.Array) -> None:
        self.w = w
        self.b = jnp.zeros((4,))


class Stack(nnx.Module):
    def __init__(self, n: int) -> None:
        ws = np.random.default_rng(0).normal(size=(n, 4, 4)).astype(np.float32)
        self.layers = [Layer(jnp.asarray(w)) for w in ws]


class Chain(nnx.Module):
    """One link of a chain: a param and the rest of the chain (None at the end)."""

    w: jax.Array = nnx.param()

    def __init__(self, child: Chain | None) -> None:
        self.w = jnp.zeros((4,))
        self.child = child


def make_chain(depth: int) -> Chain:
    chain = None
    for _ in range(depth):  # built bottom-up: no recursion in the constructor
        chain = Chain(chain)
    assert chain is not None
    return chain


def per_variable_us(fn: Callable[[], Any], n_vars: int, repeat: int) -> float:
    # CPU time of this thread, not wall time: on a shared machine an operation longer
    # than a time slice would otherwise be charged the other processes' slices too.
    timer = timeit.Timer(fn, timer=time.thread_time)
    number, _ = timer.autorange()
    number = max(1, number // 4)
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    return best * 1e6 / n_vars


def cold_split(model: nnx.Module) -> None:
    epoch.bump()  # as after a structural change somewhere
    nnx.split(model)


def real_cold_split(model: nnx.Module, changed: nnx.Module | None = None) -> None:
    # A new static attribute (on the root, or on ``changed`` inside it): this graph changed.
    setattr(model if changed is None else changed, "tag", object())
    nnx.split(model)


class _Plain:
    """A module of the floor: attributes in its ``__dict__``."""


class _Cell:
    """A cell of the floor: one slot."""

    __slots__ = ("value",)


def floor_builder(model: nnx.Module) -> Callable[[list[Any]], Any]:
    """A straight-line function that builds plain objects shaped like ``model``'s graph
    (a tree: every module and cell reached once) from its leaves in split order."""
    lines: list[str] = []
    leaf = iter(range(1 << 30))
    root_name = ""
    # Post-order without recursion (the chain is 1000 deep). A frame: the node, its
    # children still to see, the names built for those seen, its key in its parent.
    stack: list[tuple[Any, Any, list[tuple[Any, str]], Any]] = [(model, iter(sorted(vars(model).items())), [], None)]
    while stack:
        node, children, names, _ = stack[-1]
        for key, child in children:
            if isinstance(child, nnx.Variable):
                name = f"c{len(lines)}"
                lines.append(f"{name} = new(Cell); {name}.value = L[{next(leaf)}]")
                names.append((key, name))
            elif isinstance(child, nnx.Module):
                stack.append((child, iter(sorted(vars(child).items())), [], key))
                break
            elif isinstance(child, nnx.List):
                stack.append((child, iter(enumerate(child)), [], key))  # pyright: ignore[reportUnknownArgumentType]  # nnx.List[Unknown]
                break
            else:
                names.append((key, repr(child)))
        else:
            _, _, _, key = stack.pop()
            name = f"o{len(lines)}"
            if isinstance(node, nnx.List):
                lines.append(f"{name} = [{', '.join(n for _, n in names)}]")
            else:
                lines.append(f"{name} = new(Plain)" + "".join(f"; {name}.{k} = {n}" for k, n in names))
            if stack:
                stack[-1][2].append((key, name))
            else:
                root_name = name
    env: dict[str, Any] = {"new": object.__new__, "Plain": _Plain, "Cell": _Cell}
    body = "\n    ".join(lines)
    exec(compile(f"def build(L):\n    {body}\n    return {root_name}\n", "<floor>", "exec"), env)
    return env["build"]  # type: ignore[no-any-return]


def row(name: str, model: nnx.Module, middle: nnx.Module, tree: Any, n_vars: int, repeat: int) -> dict[str, float]:
    leaves, treedef = jax.tree.flatten(tree)
    graphdef, state = nnx.split(model)
    floor = floor_builder(model)
    state_leaves = state.leaves
    new_state = jax.tree.map(lambda x: x + 1, state)  # fresh arrays, as after a train step
    states = [new_state, state]  # alternate, so that every update writes new arrays
    flip = [0]

    def update() -> None:
        flip[0] ^= 1
        nnx.update(model, states[flip[0]])

    t = {
        "flatten": per_variable_us(lambda: jax.tree.flatten(tree), n_vars, repeat),
        "unflatten": per_variable_us(lambda: jax.tree.unflatten(treedef, leaves), n_vars, repeat),
        "split": per_variable_us(lambda: nnx.split(model), n_vars, repeat),
        "state": per_variable_us(lambda: nnx.state(model), n_vars, repeat),
        "merge": per_variable_us(lambda: nnx.merge(graphdef, state), n_vars, repeat),
        "update": per_variable_us(update, n_vars, repeat),
        "cold": per_variable_us(lambda: cold_split(model), n_vars, repeat),
        "real": per_variable_us(lambda: real_cold_split(model), n_vars, repeat),
        "deep": per_variable_us(lambda: real_cold_split(model, middle), n_vars, repeat),
        "floor": per_variable_us(lambda: floor(state_leaves), n_vars, repeat),
    }
    fl, un = t["flatten"], t["unflatten"]
    print(
        f"{name:>9} {fl:7.3f} {un:7.3f} {t['floor']:7.3f} | {t['split']:7.3f} {t['state']:7.3f} {t['merge']:7.3f} "
        f"{t['update']:7.3f} {t['cold']:7.3f} {t['real']:7.3f} {t['deep']:7.3f} | {t['split'] / fl:8.2f} "
        f"{t['state'] / fl:8.2f} {t['merge'] / un:8.2f} {t['floor'] / un:8.2f} {t['merge'] / t['floor']:8.2f} "
        f"{t['update'] / un:7.2f} {t['cold'] / fl:7.2f} {t['real'] / fl:7.2f} {t['deep'] / fl:7.2f}"
    )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats, up to 1000 layers")
    args = parser.parse_args()
    repeat = 3 if args.quick else 5
    sizes = (1, 10, 100, 1000) if args.quick else (1, 10, 100, 1000, 10000)
    print(f"µs per variable (best of {repeat}); ratios against the same-run jax.tree baseline")
    print(
        f"{'layers':>9} {'flatten':>7} {'unflat':>7} {'floor':>7} | {'split':>7} {'state':>7} {'merge':>7} "
        f"{'update':>7} {'cold':>7} {'real':>7} {'deep':>7} | {'split/fl':>8} {'state/fl':>8} {'merge/un':>8} "
        f"{'floor/un':>8} {'mrg/flr':>8} {'upd/un':>7} {'cold/fl':>7} {'real/fl':>7} {'deep/fl':>7}"
    )
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        model = Stack(n)
        tree = {"layers": {i: {"w": layer.w, "b": layer.b} for i, layer in enumerate(model.layers)}}
        results[n] = row(str(n), model, model.layers[n // 2], tree, 2 * n, repeat)
    depth = 1000
    chain = make_chain(depth)
    # jax.tree cannot flatten a dict nested 1000 deep (RecursionError), so the chain's
    # baseline is its arrays in a flat dict.
    arrays: dict[int, Any] = {}
    link: Any = chain
    while link is not None:
        arrays[len(arrays)] = link.w
        link = link.child
    try:
        middle: Any = chain
        for _ in range(depth // 2):
            middle = middle.child
        row(f"chain{depth}", chain, middle, arrays, depth, repeat)
    except RecursionError:  # what nnx did before its walks kept their own stack
        print(f"chain{depth}: RecursionError")
    if 10000 in results:
        big, ref = results[10000], results[1000]
        print("per-variable cost at 10000 layers / at 1000 layers: " + ", ".join(f"{k} {big[k] / ref[k]:.2f}" for k in big))


if __name__ == "__main__":
    main()
