"""One graph operation against its jax.tree baseline, repeats interleaved, GC off.

``graph_ops.py`` times each operation in turn, so a noisy stretch of the machine
lands on one column; this script alternates the operation and its baseline
(best of 30 rounds each) to compare two checkouts fairly: run it once here and
once with the other checkout's sources first on the path.

    python benchmarks/graph_ops_ab.py real 10 100 1000 chain
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/graph_ops_ab.py real 10 100 1000 chain

Operations: split, merge, update, cold, real, deep (see graph_ops.py); sizes are
layer counts of graph_ops' Stack, or ``chain`` (1000 nested submodules).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jax

import nnx

sys.path.insert(0, str(Path(__file__).parent))
from graph_ops import Stack, cold_split, make_chain  # noqa: E402  # the same models and changes


def best_seconds(fn: Callable[[], Any], number: int) -> float:
    start = time.thread_time()
    for _ in range(number):
        fn()
    return (time.thread_time() - start) / number


def model_and_tree(size: str) -> tuple[Any, Any, Any, int]:
    """The model, the same arrays as a tree for jax, the module a deep change goes to, and
    the number of variables."""
    if size == "chain":
        chain = make_chain(1000)
        arrays: dict[int, Any] = {}
        link: Any = chain
        while link is not None:
            arrays[len(arrays)] = link.w
            link = link.child
        middle: Any = chain
        for _ in range(500):
            middle = middle.child
        return chain, arrays, middle, 1000
    stack = Stack(int(size))
    tree = {"layers": {i: {"w": layer.w, "b": layer.b} for i, layer in enumerate(stack.layers)}}
    return stack, tree, stack.layers[len(stack.layers) // 2], 2 * len(stack.layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("op", choices=["split", "merge", "update", "cold", "real", "deep"])
    parser.add_argument("sizes", nargs="*", default=["10", "100", "1000", "chain"])
    args = parser.parse_args()
    for size in args.sizes:
        model, tree, middle, n_vars = model_and_tree(size)
        leaves, treedef = jax.tree.flatten(tree)
        graphdef, state = nnx.split(model)
        states = [jax.tree.map(lambda x: x + 1, state), state]
        flip = [0]

        def update() -> None:
            flip[0] ^= 1
            nnx.update(model, states[flip[0]])

        def change(node: Any) -> Callable[[], None]:
            def run() -> None:
                setattr(node, "tag", object())
                nnx.split(model)

            return run

        def flatten() -> Any:
            return jax.tree.flatten(tree)

        def unflatten() -> Any:
            return jax.tree.unflatten(treedef, leaves)

        ops: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            "split": (lambda: nnx.split(model), flatten),
            "merge": (lambda: nnx.merge(graphdef, state), unflatten),
            "update": (update, unflatten),
            "cold": (lambda: cold_split(model), flatten),
            "real": (change(model), flatten),
            "deep": (change(middle), flatten),
        }
        op, base = ops[args.op]
        for _ in range(3):
            op()
            base()
        # About 20 ms per round for each.
        n_op = max(1, int(0.02 / max(best_seconds(op, 3), 1e-7)))
        n_base = max(1, int(0.02 / max(best_seconds(base, 3), 1e-7)))
        gc.disable()
        try:
            t_op = t_base = float("inf")
            for _ in range(30):
                t_op = min(t_op, best_seconds(op, n_op))
                t_base = min(t_base, best_seconds(base, n_base))
        finally:
            gc.enable()
        print(
            f"{args.op} {size:>6}: {t_op * 1e6 / n_vars:.3f} vs {t_base * 1e6 / n_vars:.3f} µs per variable, "
            f"ratio {t_op / t_base:.2f}"
        )


if __name__ == "__main__":
    main()
