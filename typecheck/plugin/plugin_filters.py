"""The plugin's exact messages for filters (run by tests/test_typecheck.py)."""

import jax
import jax.numpy as jnp

import nnx
from typecheck.models import Block, Linear, Probe


class Tally(nnx.Variable[jax.Array], collection="tallies"):
    pass


block = Block(2, 2, rngs=nnx.Rngs(0))
nnx.state(block, "parmas")  # E: No Variable kind declares the collection "parmas"; known collections: "batch_stats", "cache", "count", "intermediates", "lora", "metric_state", "nodes", "opt_state", "params", "perturbations", "rng_counts", "rng_keys", "rngs", "tallies", "variables" (declare one with `class MyKind(nnx.Variable, collection="parmas")`)  [nnx-collection]
nnx.state(block, "tallies")  # E: Filter matches no state of Block in nnx.state; its state is: bn.mean: BatchStat, bn.scale: Param, bn.var: BatchStat, calls: Count, linear.b: Param, linear.w: Param  [nnx-unmatched-filter]
nnx.state(block, 3)  # E: 3 (int) is not a filter; use a Variable type (nnx.Param), a collection string such as "params", ..., a predicate (path, value) -> bool, a tuple of filters, or nnx.Not / nnx.All / nnx.Any / nnx.PathContains / nnx.buffers  [nnx-filter]
nnx.state(block, nnx.Param(jnp.ones(1)))  # E: a Param instance is not a filter; use a Variable type (nnx.Param), a collection string such as "params", ..., a predicate (path, value) -> bool, a tuple of filters, or nnx.Not / nnx.All / nnx.Any / nnx.PathContains / nnx.buffers  [nnx-filter]
nnx.Any(nnx.Param, 2.5)  # E: 2.5 (float) is not a filter; use a Variable type (nnx.Param), a collection string such as "params", ..., a predicate (path, value) -> bool, a tuple of filters, or nnx.Not / nnx.All / nnx.Any / nnx.PathContains / nnx.buffers  [nnx-filter]
nnx.split(block, nnx.Param, nnx.BatchStat)  # E: nnx.split leaves calls (Count) of Block unmatched by every filter; add a filter for them or end with ... to collect the rest  [nnx-split-unmatched]
nnx.state(Linear(1, 1, rngs=nnx.Rngs(0)), nnx.Cache)  # E: Filter matches no state of Linear in nnx.state; its state is: b: Param, w: Param  [nnx-unmatched-filter]
nnx.state(Probe(), nnx.Intermediate)
nnx.ref("parmas")  # E: No Variable kind declares the collection "parmas"; known collections: "batch_stats", "cache", "count", "intermediates", "lora", "metric_state", "nodes", "opt_state", "params", "perturbations", "rng_counts", "rng_keys", "rngs", "tallies", "variables" (declare one with `class MyKind(nnx.Variable, collection="parmas")`)  [nnx-collection]
