"""A checkpoint mismatch lists its paths sorted, whatever order the metadata came in."""

from __future__ import annotations

import random
from pathlib import Path

import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnx
from nnx.checkpoint import CheckpointMismatchError
from nnx.checkpoint.common import LeafSpec, compare
from nnx.filters import Path as PathKey

NAMES = st.text("abcxyz", min_size=1, max_size=3)
LEAVES: st.SearchStrategy[dict[PathKey, tuple[int, ...]]] = st.dictionaries(st.tuples(NAMES, NAMES), st.sampled_from([(2,), (3,), (2, 2)]), min_size=1, max_size=8)


def specs(shapes: dict[PathKey, tuple[int, ...]], order: list[int]) -> dict[PathKey, LeafSpec]:
    """The same leaves, inserted in the given order (dict order is what varied before)."""
    items = list(shapes.items())
    return {items[i][0]: LeafSpec("nnx.variables.Param", items[i][1], "float32") for i in order}


@settings(max_examples=40, deadline=None)
@given(LEAVES, LEAVES, st.randoms(use_true_random=False))
def test_the_report_does_not_depend_on_insertion_order(
    saved: dict[PathKey, tuple[int, ...]], wanted: dict[PathKey, tuple[int, ...]], rnd: random.Random
) -> None:
    reports: list[str] = []
    for _ in range(2):
        saved_order, wanted_order = list(range(len(saved))), list(range(len(wanted)))
        rnd.shuffle(saved_order)
        rnd.shuffle(wanted_order)
        try:
            compare("restore", specs(saved, saved_order), specs(wanted, wanted_order))
        except CheckpointMismatchError as e:
            assert e.missing == sorted(e.missing) and e.unexpected == sorted(e.unexpected)
            assert e.mismatched == sorted(e.mismatched)
            reports.append(str(e))
        else:
            reports.append("")
    assert reports[0] == reports[1]


class Wide(nnx.Module):
    def __init__(self, names: list[str]) -> None:
        for name in names:
            setattr(self, name, nnx.Param(jnp.zeros(2)))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.permutations(["zeta", "alpha", "mid", "beta", "omega"]))
def test_a_restore_reports_paths_sorted(tmp_path: Path, names: list[str]) -> None:
    file = nnx.checkpoint.save(tmp_path / f"{'-'.join(names)}.safetensors", Wide(names))
    target = Wide(["kappa", "alpha", "gamma"])
    with pytest.raises(CheckpointMismatchError) as info:
        nnx.checkpoint.restore(file, target)
    assert info.value.missing == ["gamma", "kappa"]
    assert info.value.unexpected == ["beta", "mid", "omega", "zeta"]
