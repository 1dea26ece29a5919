# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Sharding metadata, rules and errors (one device), and the 8-device suite in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import nnx
from nnx.jaxapi import partition_spec as P


class Dense(nnx.Module):
    w: jax.Array = nnx.param()

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), ("embed", "mlp"), note="dense")
        self.w = init(rngs.params(), (din, dout))
        self.b = nnx.Param(nnx.with_partitioning(jax.nn.initializers.zeros, ("mlp",))(rngs.params(), (dout,)))


def test_with_partitioning_records_axes_in_the_cell_metadata() -> None:
    model = Dense(2, 3, rngs=nnx.Rngs(0))
    assert nnx.cell(model, "w").metadata == {"sharding": ("embed", "mlp"), "note": "dense"}
    assert model.b.metadata == {"sharding": ("mlp",)}
    assert isinstance(model.w, jax.Array) and model.w.shape == (2, 3)
    # Re-initialising a declared field through a wrapped initializer updates its axes.
    model.w = nnx.with_partitioning(jax.nn.initializers.ones, ("mlp", None))(jax.random.key(0), (2, 3))
    assert nnx.cell(model, "w").metadata["sharding"] == ("mlp", None)
    assert np.array_equal(model.w, np.ones((2, 3)))


def test_rewrapping_an_initializer_replaces_its_axes() -> None:
    inner = nnx.with_partitioning(jax.nn.initializers.ones, ("embed", "mlp"), note="kept")
    cell = nnx.Param(nnx.with_partitioning(inner, ("mlp", None))(jax.random.key(0), (2, 3)))
    assert cell.metadata == {"sharding": ("mlp", None), "note": "kept"}
    assert cell.shape == (2, 3)


def test_a_bare_boxed_value_is_refused_with_the_fix() -> None:
    class Bare(nnx.Module):
        def __init__(self) -> None:
            self.w = nnx.with_partitioning(jax.nn.initializers.ones, ("embed",))(jax.random.key(0), (2,))

    with pytest.raises(TypeError, match=r"Bare\.w: .*\['sharding'\].*nnx\.Param\(\.\.\.\)"):
        Bare()


def test_metadata_survives_abstract_construction() -> None:
    _, abstract = jax.eval_shape(lambda: nnx.split(Dense(4, 8, rngs=nnx.Rngs(0))))
    specs: nnx.State[Dense] = nnx.get_partition_spec(abstract, [("mlp", "model")])
    assert specs["w"] == P(None, "model") and specs["b"] == P("model")


def test_logical_to_mesh_axes_rules() -> None:
    rules = [("batch", "data"), ("heads", "model"), ("kv", "model"), ("embed", None), ("both", ("data", "model"))]
    assert nnx.logical_to_mesh_axes(("batch", "embed"), rules) == P("data", None)
    # A mesh axis splits one dimension only: the second name that wants "model" is replicated.
    assert nnx.logical_to_mesh_axes(("heads", "kv"), rules) == P("model", None)
    assert nnx.logical_to_mesh_axes(("unknown", None), rules) == P(None, None)
    assert nnx.logical_to_mesh_axes(("both",), rules) == P(("data", "model"))
    assert nnx.logical_to_mesh_axes(("data", None)) == P("data", None)  # no rules: names are mesh axes
    with nnx.logical_axis_rules([("data", "model")]):
        assert nnx.logical_to_mesh_axes(("data",)) == P("model")
    assert nnx.logical_to_mesh_axes(("data",)) == P("data")


def test_leaves_without_axes_are_replicated() -> None:
    class Holder(nnx.Module):
        def __init__(self) -> None:
            self.dense = Dense(2, 3, rngs=nnx.Rngs(0))
            self.stat = nnx.BatchStat(jnp.zeros(3))
            self.rngs = nnx.Rngs(1)

    specs: nnx.State[Holder] = nnx.get_partition_spec(Holder(), [("mlp", "model")])
    assert specs.dense.w == P(None, "model")
    assert specs.stat == P() and specs.rngs.default.key == P()


def test_wrong_number_of_axes_names_the_path() -> None:
    model = Dense(2, 3, rngs=nnx.Rngs(0))
    model.b = nnx.Param(jnp.zeros((3,)), sharding=("mlp", "extra"))
    with pytest.raises(ValueError, match=r"'b' has shape \(3,\) but its sharding metadata names 2 axes"):
        nnx.get_partition_spec(model)


def test_unknown_mesh_axis_names_the_path() -> None:
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    with pytest.raises(ValueError, match=r"'b' would be split over mesh axes \['mlp'\]"):
        nnx.get_named_sharding(nnx.state(Dense(2, 3, rngs=nnx.Rngs(0))), mesh)
    # a State of shardings, not of Dense's values: State[Any], so its leaves are not typed as arrays
    shardings: nnx.State[Any] = nnx.get_named_sharding(Dense(2, 3, rngs=nnx.Rngs(0)), mesh, [("mlp", "data")])
    assert shardings["w"].spec == P(None, "data")
    with pytest.raises(TypeError, match="expected a State or a module"):
        nnx.get_partition_spec({"w": jnp.ones(2)})


def test_init_sharded_on_one_device_builds_the_same_model() -> None:
    mesh = Mesh(np.array(jax.devices()[:1]), ("model",))
    model = nnx.init_sharded(lambda: Dense(3, 4, rngs=nnx.Rngs(0)), mesh, [("mlp", "model")])
    reference = Dense(3, 4, rngs=nnx.Rngs(0))
    assert np.array_equal(model.w, reference.w)
    assert nnx.cell(model, "w").metadata["sharding"] == ("embed", "mlp")


def test_the_eight_device_suite_passes() -> None:
    """tests/multidevice runs in a fresh process: the device-count flag must precede JAX's start."""
    root = Path(__file__).parent.parent
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(root / "tests" / "multidevice")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
