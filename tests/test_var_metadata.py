"""``nnx.set_metadata``, ``nnx.var_defaults`` and ``nnx.statelib.diff``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

import nnx


class Pair(nnx.Module):
    def __init__(self) -> None:
        self.v = nnx.Variable(jnp.array(0.0))
        self.p = nnx.Param(jnp.array(1.0))


def test_set_metadata_reaches_every_selected_cell_once() -> None:
    m = Pair()
    shared = nnx.List([m, m])  # the same cells along two paths
    nnx.set_metadata(shared, foo="bar")
    assert m.v.get_metadata("foo") == "bar" and m.p.get_metadata("foo") == "bar"
    nnx.set_metadata(shared, frozen=True, only=nnx.Param)
    assert m.p.get_metadata("frozen") is True
    assert "frozen" not in m.v.get_metadata()
    # metadata is part of the GraphDef: a split after set_metadata sees it
    assert nnx.state(m).metadata(("p",)) == {"foo": "bar", "frozen": True}


def test_set_metadata_without_metadata_is_refused() -> None:
    with pytest.raises(TypeError, match="needs metadata keywords"):
        nnx.set_metadata(Pair())


def test_var_defaults_reads_back_what_was_set_and_restores_on_exit() -> None:
    start = nnx.var_defaults()
    assert start == nnx.VarDefaults(hijax=False, ref=False)
    with nnx.var_defaults(hijax=True):
        assert nnx.var_defaults().hijax is True and nnx.var_defaults().ref is False
        with nnx.var_defaults(ref=True):
            assert nnx.var_defaults() == nnx.VarDefaults(hijax=True, ref=True)
        assert nnx.var_defaults().ref is False
        nnx.var_defaults(hijax=False)  # without `with`: in effect until the block ends
        assert nnx.var_defaults().hijax is False
    assert nnx.var_defaults() == start


def test_var_defaults_change_nothing_about_nnx_cells() -> None:
    with nnx.var_defaults(hijax=True, ref=True):
        v = nnx.Variable(jnp.array(1.0))
    assert isinstance(v[...], jax.Array) and v.get_metadata() == {}
    assert nnx.var_defaults() == nnx.VarDefaults(hijax=False, ref=False)


def test_var_defaults_refuses_non_bool_switches() -> None:
    with pytest.raises(TypeError, match="hijax= takes True or False"):
        nnx.var_defaults(hijax=1)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    assert nnx.var_defaults().hijax is False


def test_diff_is_the_state_at_paths_the_other_lacks() -> None:
    small = nnx.List([nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(0))])
    big = nnx.List([nnx.Linear(2, 2, use_bias=False, rngs=nnx.Rngs(1)) for _ in range(2)])
    nothing: dict[str, Any] = {}
    assert nnx.statelib.diff(nnx.state(small), nnx.state(big)) == nnx.state(nothing)
    extra = nnx.statelib.diff(nnx.state(big), nnx.state(small))
    assert extra.paths == ((1, "kernel"),)
    assert extra.kind((1, "kernel")) is nnx.Param
