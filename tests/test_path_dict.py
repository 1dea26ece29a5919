"""PathDict (what WeightNorm/SpectralNorm key their per-parameter cells by), and the
two layers' Flax layouts: ``norm.scales[("kernel",)]``, ``norm.batch_stats[(..., "u")]``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_close

import nnx
from nnx.nn.path_dict import PathDict

_names = st.sampled_from(["layers", "kernel", "bias", "u", "sigma", "dense"])
_part = st.one_of(_names, st.integers(0, 3))
_paths = st.lists(st.tuples(_names).flatmap(lambda head: st.lists(_part, max_size=3).map(lambda rest: head + tuple(rest))), max_size=6)


def _prefix_free(paths: list[tuple[str | int, ...]]) -> list[tuple[str | int, ...]]:
    """The paths, with any that is a prefix of (or equal to) another dropped."""
    unique = sorted(set(paths), key=str)
    return [p for p in unique if not any(q != p and q[: len(p)] == p for q in unique)]


@settings(max_examples=40, deadline=None)
@given(_paths)
def test_entries_read_back_by_key_and_survive_split_merge(raw: list[tuple[str | int, ...]]) -> None:
    paths = _prefix_free(raw)
    table: PathDict[nnx.BatchStat[jax.Array]] = PathDict({p: nnx.BatchStat(jnp.full((2,), float(i))) for i, p in enumerate(paths)})
    assert set(table.keys()) == set(paths) and len(table) == len(paths)
    for i, p in enumerate(paths):
        assert p in table and float(table[p].value[0]) == i
    graphdef, state = nnx.split(table)
    assert set(state.paths) == set(paths)  # the state path of an entry is its key
    copy = nnx.merge(graphdef, state)
    for i, p in enumerate(paths):
        assert float(copy[p].value[0]) == i


def test_bad_keys_and_missing_entries_are_clear_errors() -> None:
    table = PathDict({("layers", 0, "kernel"): nnx.Param(jnp.ones(2))})
    assert table["layers/0/kernel"] is table[("layers", 0, "kernel")]
    with pytest.raises(KeyError, match=r"no entry \('layers', 0\).*keys: \[\('layers', 0, 'kernel'\)\]"):
        table[("layers", 0)]
    with pytest.raises(TypeError, match="starting with an attribute name"):
        PathDict({(0, "kernel"): nnx.Param(jnp.ones(2))})
    with pytest.raises(ValueError, match="no key may extend another|prefix"):
        PathDict({("a",): nnx.Param(jnp.ones(2)), ("a", "b"): nnx.Param(jnp.ones(2))})


def test_spectral_norm_keeps_u_and_sigma_in_batch_stats_by_path() -> None:
    seq = nnx.Sequential(nnx.Linear(5, 4, rngs=nnx.Rngs(0)), nnx.relu, nnx.Linear(4, 3, rngs=nnx.Rngs(1)))
    norm = nnx.SpectralNorm(seq, rngs=nnx.Rngs(2))
    assert set(norm.batch_stats.keys()) == {
        ("layers", 0, "kernel", "u"), ("layers", 0, "kernel", "sigma"),
        ("layers", 2, "kernel", "u"), ("layers", 2, "kernel", "sigma"),
    }  # fmt: skip
    assert set(nnx.state(norm, nnx.BatchStat).paths) == {("batch_stats", *k) for k in norm.batch_stats.keys()}
    norm(jnp.ones((2, 5)))
    first = seq.layers[0]
    assert isinstance(first, nnx.Linear)
    kernel = np.asarray(first.kernel[...])
    sigma = norm.batch_stats[("layers", 0, "kernel", "sigma")].value
    assert 0 < float(sigma) <= float(np.linalg.svd(kernel, compute_uv=False)[0]) + 1e-5


def test_weight_norm_scales_keyed_by_parameter_path() -> None:
    norm = nnx.WeightNorm(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
    assert list(norm.scales.keys()) == [("kernel",)]
    assert norm.scales[("kernel",)].shape == (2,)


@pytest.mark.parametrize("wrap", ["weight", "spectral"])
def test_a_narrower_compute_dtype_over_float32_weights(wrap: str) -> None:
    # Regression: the normalised weight (float16 with dtype=float16) was put in place
    # with nnx.update, which refuses a dtype change, so the call raised TypeError.
    linear = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    kernel = linear.kernel[...]
    if wrap == "weight":
        norm: nnx.Module = nnx.WeightNorm(linear, dtype=jnp.float16, rngs=nnx.Rngs(1))
    else:
        norm = nnx.SpectralNorm(linear, dtype=jnp.float16, rngs=nnx.Rngs(1))
    y = norm(jnp.ones((2, 4), jnp.float16))  # type: ignore[operator]
    assert y.shape == (2, 3)  # the Linear computes in the promoted dtype of its inputs and bias
    assert linear.kernel.dtype == jnp.float32  # the stored weight is back, dtype and value
    assert_close(linear.kernel[...], kernel)


def test_weight_norm_restores_the_weight_when_the_layer_raises() -> None:
    linear = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    kernel = linear.kernel[...]
    norm = nnx.WeightNorm(linear, rngs=nnx.Rngs(1))
    with pytest.raises(TypeError):
        norm(jnp.ones((2, 5)))  # wrong feature count: the dot product fails inside the call
    assert_close(linear.kernel[...], kernel)
    assert jax.numpy.array_equal(linear.kernel[...], kernel)
