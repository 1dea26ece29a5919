"""Per-call cost of a stateful train step: nnx.jit against pure jax.jit (and Flax, Equinox).

Two models, each trained with Adam (optax) one step per call, model and
optimizer passed to the jitted function and updated in place:

  (a) mlp:    3 Linear layers of width 32, ReLU, batch 8;
  (b) blocks: 100 blocks of Linear(32, 32) + BatchNorm, batch 8.

Baselines, timed side by side in the same process (rounds interleave the
variants, best round reported, so machine noise hits all alike):

  pure-jax      params / batch stats / opt state as dicts, jax.jit returning new ones;
  nnx.jit       ours: train_step(model, optimizer, x, y), no return of state;
  nnx split     ours, the jax.jit path: split outside, merge inside, return the state;
  flax nnx.jit  flax.nnx graph mode (if flax is installed);
  eqx filter_jit  equinox (if installed; mlp: eqx.nn.Linear, blocks: eqx.nn.BatchNorm with State).

Also prints the compiled step's XLA temp memory for nnx.jit and pure-jax,
and nnx.jit's Python work per call and per cell for models of 20, 1,400 and
20,000 cells (each call writes every cell; the compiled call is stubbed out,
so only nnx.jit's own work is timed; the stub comes from one eager run of the
step, which avoids compiling a 20,000-input program).

    python benchmarks/dispatch.py [--rounds 15] [--calls 100] [--cells-only]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

import nnx
from nnx.nn.norm_stats import moments, normalize

WIDTH, BATCH = 32, 8


# -- models --------------------------------------------------------------------


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.layers = [nnx.Linear(WIDTH, WIDTH, rngs=rngs) for _ in range(3)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = jax.nn.relu(layer(x))
        return x


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(WIDTH, WIDTH, rngs=rngs)
        self.bn = nnx.BatchNorm(WIDTH, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(self.linear(x)))


class Blocks(nnx.Module):
    def __init__(self, n: int, rngs: nnx.Rngs) -> None:
        self.blocks = [Block(rngs) for _ in range(n)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


def mse(y: jax.Array, t: jax.Array) -> jax.Array:
    return jnp.mean((y - t) ** 2)


# -- nnx -----------------------------------------------------------------------


def nnx_step(model: nnx.Module) -> tuple[Callable[[], Any], Any]:
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model: Any, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        loss, grads = nnx.value_and_grad(lambda m: mse(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    x, y = jnp.ones((BATCH, WIDTH)), jnp.zeros((BATCH, WIDTH))
    return (lambda: train_step(model, optimizer, x, y)), (train_step, (model, optimizer, x, y))


def nnx_split_step(model: nnx.Module) -> Callable[[], Any]:
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    @jax.jit
    def train_step(state: Any, x: jax.Array, y: jax.Array) -> tuple[Any, jax.Array]:
        model, optimizer = nnx.merge(graphdef, state)
        loss, grads = nnx.value_and_grad(lambda m: mse(m(x), y))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    x, y = jnp.ones((BATCH, WIDTH)), jnp.zeros((BATCH, WIDTH))
    box = [state]

    def run() -> jax.Array:
        box[0], loss = train_step(box[0], x, y)
        return loss

    return run


# -- pure JAX ------------------------------------------------------------------


def pure_step(n_layers: int, batch_norm: bool) -> tuple[Callable[[], Any], Any]:
    keys = jax.random.split(jax.random.key(0), n_layers)
    params: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for i, k in enumerate(keys):
        params[f"l{i}"] = {"w": jax.random.normal(k, (WIDTH, WIDTH)) / WIDTH**0.5, "b": jnp.zeros((WIDTH,))}
        if batch_norm:
            params[f"bn{i}"] = {"scale": jnp.ones((WIDTH,)), "bias": jnp.zeros((WIDTH,))}
            stats[f"bn{i}"] = {"mean": jnp.zeros((WIDTH,)), "var": jnp.ones((WIDTH,))}
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)

    def forward(params: Any, stats: Any, x: jax.Array) -> tuple[jax.Array, Any]:
        new_stats = {}
        for i in range(n_layers):
            x = x @ params[f"l{i}"]["w"] + params[f"l{i}"]["b"]
            if batch_norm:
                # The same math as nnx.BatchNorm (its array functions, no modules), so
                # that the compiled programs match and the difference measured is dispatch.
                mean, var = moments(x, (0,))
                s = stats[f"bn{i}"]
                new_stats[f"bn{i}"] = {
                    "mean": 0.99 * s["mean"] + (1 - 0.99) * mean.reshape(WIDTH),
                    "var": 0.99 * s["var"] + (1 - 0.99) * var.reshape(WIDTH),
                }
                p = params[f"bn{i}"]
                x = normalize(x, mean, var, p["scale"], p["bias"], feature_axes=(1,), epsilon=1e-5, dtype=None)
            x = jax.nn.relu(x)
        return x, new_stats

    @jax.jit
    def train_step(params: Any, stats: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        def loss_fn(p: Any) -> tuple[jax.Array, Any]:
            out, new_stats = forward(p, stats, x)
            return mse(out, y), new_stats

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss

    x, y = jnp.ones((BATCH, WIDTH)), jnp.zeros((BATCH, WIDTH))
    box = [params, stats, opt_state]

    def run() -> jax.Array:
        box[0], box[1], box[2], loss = train_step(box[0], box[1], box[2], x, y)
        return loss

    return run, (train_step, (params, stats, opt_state, x, y))


# -- Flax and Equinox (optional) ------------------------------------------------


def flax_step(n_layers: int, batch_norm: bool) -> Callable[[], Any] | None:
    try:
        from flax import nnx as fnnx
    except ImportError:
        return None

    class FBlock(fnnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.linear = fnnx.Linear(WIDTH, WIDTH, rngs=rngs)
            self.bn = fnnx.BatchNorm(WIDTH, rngs=rngs) if batch_norm else None

        def __call__(self, x: jax.Array) -> jax.Array:
            x = self.linear(x)
            return jax.nn.relu(self.bn(x) if self.bn is not None else x)

    class FModel(fnnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.blocks = fnnx.List([FBlock(rngs) for _ in range(n_layers)])

        def __call__(self, x: jax.Array) -> jax.Array:
            for b in self.blocks:
                x = b(x)
            return x

    model = FModel(fnnx.Rngs(0))
    optimizer = fnnx.Optimizer(model, optax.adam(1e-3), wrt=fnnx.Param)

    @fnnx.jit
    def train_step(model: Any, optimizer: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        loss, grads = fnnx.value_and_grad(lambda m: mse(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    x, y = jnp.ones((BATCH, WIDTH)), jnp.zeros((BATCH, WIDTH))
    return lambda: train_step(model, optimizer, x, y)


def equinox_step(n_layers: int, batch_norm: bool) -> Callable[[], Any] | None:
    try:
        import equinox as eqx
    except ImportError:
        return None
    keys = jax.random.split(jax.random.key(0), n_layers)

    class EBlock(eqx.Module):
        linear: Any
        bn: Any

        def __init__(self, key: jax.Array) -> None:
            self.linear = eqx.nn.Linear(WIDTH, WIDTH, key=key)
            self.bn = eqx.nn.BatchNorm(WIDTH, axis_name="batch", momentum=0.99) if batch_norm else None

    class EModel(eqx.Module):
        blocks: list[Any]

        def __init__(self) -> None:
            self.blocks = [EBlock(k) for k in keys]

        def __call__(self, x: jax.Array, state: Any) -> tuple[jax.Array, Any]:
            for b in self.blocks:
                x = b.linear(x)
                if b.bn is not None:
                    x, state = b.bn(x, state)
                x = jax.nn.relu(x)
            return x, state

    model, state = eqx.nn.make_with_state(EModel)()
    tx = optax.adam(1e-3)
    opt_state = tx.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train_step(model: Any, state: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        def loss_fn(m: Any) -> tuple[jax.Array, Any]:
            out, new_state = jax.vmap(m, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, state)
            return mse(out, y), new_state

        (loss, new_state), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), new_state, opt_state, loss

    x, y = jnp.ones((BATCH, WIDTH)), jnp.zeros((BATCH, WIDTH))
    box = [model, state, opt_state]

    def run() -> jax.Array:
        box[0], box[1], box[2], loss = train_step(box[0], box[1], box[2], x, y)
        return loss

    return run


# -- timing ----------------------------------------------------------------------


def per_call_us(step: Callable[[], Any], calls: int, clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    out = None
    for _ in range(calls):
        out = step()
    jax.block_until_ready(out)
    return (clock() - start) / calls * 1e6


def compiled_stats(jitted: Any, args: tuple[Any, ...]) -> tuple[int, float]:
    """XLA temp memory (bytes) and flops of the compiled step."""
    compiled = jitted.lower(*args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return int(compiled.memory_analysis().temp_size_in_bytes), float(cost.get("flops", 0.0))


def python_overhead_us(step: Callable[[], Any], jitted: Any, calls: int) -> float:
    """nnx.jit's own Python work per call: the same call with the compiled function
    replaced by one that returns a ready result (what remains is reading the cells,
    the argument check and writing the cells back)."""
    last = jitted._last
    if last is None:
        return float("nan")
    real = last.jitted
    args = step_args[id(jitted)]
    result = real(last.frame.values(), *[a if not isinstance(a, nnx.Object) else None for a in args])
    last.jitted = lambda *_: result
    try:
        return min(per_call_us(step, calls) for _ in range(5))
    finally:
        last.jitted = real


step_args: dict[int, tuple[Any, ...]] = {}


def bench(name: str, make_model: Callable[[], nnx.Module], n_layers: int, batch_norm: bool, rounds: int, calls: int) -> None:
    ours, (ours_jitted, ours_args) = nnx_step(make_model())
    step_args[id(ours_jitted)] = ours_args
    pure, (pure_jitted, pure_args) = pure_step(n_layers, batch_norm)
    variants: dict[str, Callable[[], Any]] = {"pure-jax": pure, "nnx.jit": ours, "nnx split+jax.jit": nnx_split_step(make_model())}
    flax_run = flax_step(n_layers, batch_norm)
    if flax_run is not None:
        variants["flax nnx.jit"] = flax_run
    eqx_run = equinox_step(n_layers, batch_norm)
    if eqx_run is not None:
        variants["eqx filter_jit"] = eqx_run
    for step in variants.values():  # compile and warm up
        for _ in range(5):
            jax.block_until_ready(step())
    best = {k: float("inf") for k in variants}
    for _ in range(rounds):
        for k, step in variants.items():
            n = calls if not k.startswith("flax") else max(calls // 10, 5)
            best[k] = min(best[k], per_call_us(step, n))
    base = best["pure-jax"]
    print(f"\n{name}: Adam train step, best of {rounds} rounds, µs per call")
    for k, us in best.items():
        print(f"  {k:20s} {us:10.1f} µs   {us / base:6.2f}x pure-jax")
    overhead = python_overhead_us(ours, ours_jitted, calls)
    print(f"  nnx.jit Python work per call (compiled call stubbed out): {overhead:.1f} µs = {overhead / base:.3f}x pure-jax")
    if "flax nnx.jit" in best:
        print(f"  nnx.jit is {best['flax nnx.jit'] / best['nnx.jit']:.1f}x faster than flax nnx.jit")
    (ours_mem, ours_flops), (pure_mem, pure_flops) = compiled_stats(ours_jitted, ours_args), compiled_stats(pure_jitted, pure_args)
    print(f"  XLA temp memory: nnx.jit {ours_mem} B, pure-jax {pure_mem} B ({ours_mem / max(pure_mem, 1):.2f}x)")
    print(f"  XLA flops:       nnx.jit {ours_flops:.0f}, pure-jax {pure_flops:.0f} ({ours_flops / max(pure_flops, 1):.3f}x)")


class Pair(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.ones((2, 2)))
        self.b = nnx.Param(jnp.zeros((2,)))


class Cells(nnx.Module):
    """``n`` cells: ``n // 2`` small layers of two params each."""

    def __init__(self, n: int) -> None:
        self.layers = [Pair() for _ in range(n // 2)]


def per_cell(n_cells: int, calls: int) -> tuple[float, int, float]:
    """nnx.jit's Python work per call (µs) for a step that writes all ``n_cells`` cells."""
    import nnx.jaxapi as jx  # what nnx.jit calls jax.jit through

    model = Cells(n_cells)

    def step(model: Cells, x: jax.Array) -> None:
        for layer in model.layers:
            layer.w.value = layer.w.value * x
            layer.b.value = layer.b.value * x

    jitted = nnx.jit(step)
    x = jnp.float32(1.0)
    real_jit = jx.jit
    jx.jit = lambda fun, **_: fun  # the first call runs the pure step eagerly: no compile
    try:
        jitted(model, x)
    finally:
        jx.jit = real_jit
    last = jitted._last
    assert last is not None, "the call did not take nnx.jit's fast path"
    result = last.jitted(last.frame.values(), None, x)  # dyn args: None for the module
    last.jitted = lambda *_: result
    n = len(nnx.state(model).leaves)
    # CPU time of this thread: on a shared machine, a call longer than a time slice
    # would otherwise be charged the other processes' slices too.
    best = min(per_call_us(lambda: jitted(model, x), max(calls, 3), time.thread_time) for _ in range(5))
    # The same cells read and written by a plain loop: what touching this much memory
    # costs on this machine (large models fall out of the CPU caches).
    cells = [c for layer in model.layers for c in (layer.w, layer.b)]
    new = [c._value for c in cells]

    def touch() -> None:
        for c, v in zip(cells, new):
            c._value = v

    floor = min(per_call_us(touch, max(calls, 3), time.thread_time) for _ in range(5))
    return best, n, floor


def cells_table(calls: int) -> None:
    print("\nnnx.jit Python work per call (thread CPU time), compiled call stubbed out (every cell written each call)")
    rows = []
    for n_cells in (20, 1400, 20000):
        us, n, floor = per_cell(n_cells, max(5, calls * 20 // n_cells))
        rows.append((n, us, floor))
        print(
            f"  {n:6d} cells: {us:10.1f} µs per call, {us * 1000 / n:7.1f} ns per cell "
            f"(a plain loop writing the same cells: {floor * 1000 / n:6.1f} ns per cell, {us / floor:5.2f}x)"
        )
    base = rows[0][1] / rows[0][0]
    print("  per-cell cost relative to 20 cells: " + ", ".join(f"{n}: {us / n / base:.2f}" for n, us, _ in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--cells-only", action="store_true", help="only the per-cell table")
    args = parser.parse_args()
    cells_table(args.calls)
    if args.cells_only:
        return
    bench("(a) 3x32 MLP", lambda: MLP(nnx.Rngs(0)), 3, False, args.rounds, args.calls)
    bench("(b) 100 x (Linear + BatchNorm)", lambda: Blocks(100, nnx.Rngs(0)), 100, True, args.rounds, max(args.calls // 10, 20))


if __name__ == "__main__":
    main()
