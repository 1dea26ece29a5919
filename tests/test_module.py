"""Modules: plain Python semantics, containers, flags, repr."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Dropout(nnx.Module):
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.deterministic = False


class Norm(nnx.Module):
    def __init__(self) -> None:
        self.use_running_average = False
        self.mean = nnx.BatchStat(jnp.zeros(2))


class Net(nnx.Module):
    # Attributes the tests replace or add later (surgery), declared with the widest type.
    norm: nnx.Module
    layers: list[Any]
    extra: jax.Array
    alias: nnx.Module
    me: nnx.Module

    def __init__(self) -> None:
        self.drop = Dropout(0.5)
        self.norm = Norm()
        self.layers = [Dropout(0.1), {"inner": Norm()}]


def test_lists_and_dicts_become_tracked_containers() -> None:
    net = Net()
    assert isinstance(net.layers, nnx.List)
    assert isinstance(net.layers[1], nnx.Dict)
    paths = nnx.state(net).paths
    assert ("layers", 1, "inner", "mean") in paths


def test_train_and_eval_flip_flags_everywhere() -> None:
    net = Net()
    net.eval()
    assert net.drop.deterministic and net.layers[0].deterministic
    assert isinstance(net.norm, Norm) and net.norm.use_running_average
    assert net.layers[1]["inner"].use_running_average
    net.train()
    assert not net.drop.deterministic and not net.layers[1]["inner"].use_running_average


def test_set_attributes_reports_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"following attributes: \['determinstic'\] in Net or its submodules"):
        Net().set_attributes(determinstic=True)


def test_model_surgery_and_structure_changes_are_seen_by_split() -> None:
    net = Net()
    g1 = nnx.graphdef(net)
    net.norm = Dropout(0.2)  # replace a submodule by a different type
    g2, s2 = nnx.split(net)
    assert g1 != g2
    assert ("norm", "mean") not in s2.paths
    net.layers.append(Norm())
    assert ("layers", 2, "mean") in nnx.state(net).paths
    net.extra = jnp.ones(3)  # a plain array attribute is a node
    assert ("extra",) in nnx.state(net).paths


def test_repr_shows_shapes_shared_and_cycles() -> None:
    net = Net()
    net.alias = net.norm
    net.me = net
    text = repr(net)
    assert "BatchStat(float32[2])" in text
    assert "<shared Norm at alias>" in text  # sorted walk: alias comes first
    assert "<shared Net at <root>>" in text


def test_sow_accumulates_and_pop_removes() -> None:
    class Probe(nnx.Module):
        def __call__(self, x: jax.Array) -> jax.Array:
            self.sow(nnx.Intermediate, "seen", x)
            return x

    p = Probe()
    p(jnp.ones(1))
    p(jnp.zeros(1))
    seen = nnx.pop(p, nnx.Intermediate).seen
    assert len(seen) == 2
    np.testing.assert_allclose(seen[0], 1.0)
    assert "seen" not in vars(p)


def test_iter_modules_visits_shared_once() -> None:
    net = Net()
    net.alias = net.norm
    modules = [m for _, m in net.iter_modules()]
    assert len(modules) == len({id(m) for m in modules})
    assert net.norm in modules


def test_sequential_chains_layers() -> None:
    class Add(nnx.Module):
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, x: jax.Array) -> jax.Array:
            return x + self.k

    seq = nnx.Sequential(Add(1), Add(2))
    assert isinstance(seq, nnx.Module)
    assert float(seq(jnp.array(0.0))) == 3.0
    g, s = nnx.split(seq)
    assert float(nnx.merge(g, s)(jnp.array(1.0))) == 4.0
