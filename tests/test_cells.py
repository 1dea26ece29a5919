"""Library layers hold their state in Variable cells; the Variable value API.

``nnx.Linear(...).kernel`` is a ``Param`` cell (as in Flax 0.12): ``[...]``,
``.value`` and ``get_value()`` give the array, ``[...] = w``, ``.value = w`` and
``set_value(w)`` write into the cell, so every holder sees the write. Splitting
a model still gives plain-array State leaves at the same paths as before.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx

from typed_jax import jit, tree_map

W = jnp.arange(6.0).reshape(2, 3)


def linear(use_bias: bool = True) -> nnx.Linear:
    return nnx.Linear(2, 3, use_bias=use_bias, rngs=nnx.Rngs(0))


# -- reads ---------------------------------------------------------------------
def test_a_layer_parameter_reads_as_its_cell() -> None:
    layer = linear()
    assert isinstance(layer.kernel, nnx.Param)
    assert isinstance(layer.bias, nnx.Param)
    array = layer.kernel.get_raw_value()
    assert isinstance(array, jax.Array)
    assert layer.kernel[...] is array  # [...] of an array cell is the array, not a copy
    assert layer.kernel.value is array and layer.kernel.get_value() is array
    np.testing.assert_array_equal(layer.kernel[0], array[0])
    np.testing.assert_array_equal(layer.kernel.get_value(index=(slice(None), 1)), array[:, 1])


def test_every_library_layer_holds_cells_of_its_kind() -> None:
    rngs = nnx.Rngs(0)
    bn = nnx.BatchNorm(3, rngs=rngs)
    assert isinstance(bn.scale, nnx.Param) and isinstance(bn.mean, nnx.BatchStat)
    assert isinstance(nnx.Embed(5, 3, rngs=rngs).embedding, nnx.Param)
    assert isinstance(nnx.LSTMCell(2, 3, rngs=rngs).hi.kernel, nnx.Param)
    lora = nnx.LoRA(2, 1, 3, rngs=rngs)
    assert isinstance(lora.lora_a, nnx.LoRAParam)
    mha = nnx.MultiHeadAttention(2, 4, decode=True, rngs=rngs)
    assert mha.cached_key is None  # no cache before init_cache
    mha.init_cache((1, 3, 4))
    assert isinstance(mha.cached_key, nnx.Cache) and isinstance(mha.cache_index, nnx.Cache)


def test_without_bias_the_attribute_is_none_and_the_state_has_no_bias_leaf() -> None:
    layer = linear(use_bias=False)
    assert layer.bias is None
    assert nnx.state(layer).paths == (("kernel",),)
    for norm in (nnx.LayerNorm(3, use_bias=False, use_scale=False), nnx.RMSNorm(3, use_scale=False)):
        assert norm.scale is None
        assert nnx.state(norm).paths == ()


# -- writes --------------------------------------------------------------------
def test_index_and_value_writes_go_into_the_cell() -> None:
    layer = linear()
    cell = layer.kernel
    layer.kernel[...] = W
    assert layer.kernel is cell and layer.kernel[...] is W  # same shape and dtype: stored as given
    assert layer.bias is not None  # the type says a layer may have no bias
    np.testing.assert_allclose(layer(jnp.ones((1, 2))), jnp.ones((1, 2)) @ W + layer.bias[...])
    layer.kernel[0] = jnp.full((3,), -1.0)  # a part: written functionally
    np.testing.assert_array_equal(layer.kernel[...], jnp.stack([jnp.full((3,), -1.0), W[1]]))
    layer.kernel.value = W * 2
    np.testing.assert_array_equal(nnx.state(layer).kernel, W * 2)
    layer.kernel.set_value(W * 3)
    np.testing.assert_array_equal(layer.kernel.get_value(), W * 3)
    layer.kernel[...] = 1.0  # a scalar broadcasts and keeps the cell's dtype
    assert layer.kernel.shape == (2, 3) and layer.kernel.dtype == jnp.float32
    np.testing.assert_array_equal(layer.kernel[...], jnp.ones((2, 3)))


def test_two_modules_holding_the_same_cell_see_each_others_writes() -> None:
    first = linear()
    second = linear()
    second.kernel = first.kernel  # assigning a cell shares it
    first.kernel[...] = W
    assert second.kernel[...] is W
    x = jnp.ones((4, 2))
    assert first.bias is not None and second.bias is not None
    np.testing.assert_allclose(second(x) - second.bias[...], first(x) - first.bias[...])
    graphdef, state = nnx.split((first, second))
    assert len([p for p in state.paths if p[-1] == "kernel"]) == 1  # shared: one leaf
    a, b = nnx.merge(graphdef, state)
    assert a.kernel is b.kernel


def test_lora_from_linear_shares_the_cells_it_was_given() -> None:
    base = linear()
    layer = nnx.LoRALinear.from_linear(base, lora_rank=1, rngs=nnx.Rngs(1))
    assert layer.kernel is base.kernel and layer.bias is base.bias
    base.kernel[...] = W
    assert layer.kernel[...] is W


def test_writes_from_a_foreign_trace_are_refused_and_change_nothing() -> None:
    layer = linear()
    before = layer.kernel[...]

    @jit
    def leak(x: jax.Array) -> jax.Array:
        layer.kernel[...] = x
        return x

    with pytest.raises(nnx.TraceContextError, match="created outside the JAX"):
        leak(W)
    assert layer.kernel[...] is before


# -- metadata and descriptions of the value --------------------------------------
def test_get_metadata_all_one_or_a_default() -> None:
    v = nnx.Param(W, sharding=("in", "out"), note="n")
    assert v.get_metadata() == {"sharding": ("in", "out"), "note": "n"}
    assert v.get_metadata("note") == "n"
    assert v.get_metadata("missing", None) is None
    with pytest.raises(KeyError, match=r"no metadata 'missing'.*\['note', 'sharding'\]"):
        v.get_metadata("missing")
    v.get_metadata()["note"] = "changed"  # a copy
    assert v.get_metadata("note") == "n"
    v.set_metadata("note", "m")
    v.set_metadata(extra=1)
    assert v.get_metadata() == {"sharding": ("in", "out"), "note": "m", "extra": 1}
    v.set_metadata({"only": True})
    assert v.get_metadata() == {"only": True}
    with pytest.raises(TypeError, match="set_metadata takes keywords"):
        v.set_metadata("a", 1, 2)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    assert v.get_metadata() == {"only": True}


def test_initializer_metadata_rides_on_the_layer_cell() -> None:
    init = nnx.with_partitioning(nnx.initializers.lecun_normal(), (None, "model"))
    layer = nnx.Linear(2, 3, kernel_init=init, rngs=nnx.Rngs(0))
    assert layer.kernel.get_metadata("sharding") == (None, "model")
    assert nnx.state(layer).metadata(("kernel",))["sharding"] == (None, "model")


def test_transpose_ndim_size_and_sharding_describe_the_value() -> None:
    layer = linear()
    array = layer.kernel[...]
    np.testing.assert_array_equal(layer.kernel.T, array.T)
    assert (layer.kernel.ndim, layer.kernel.size, layer.kernel.shape) == (2, 6, (2, 3))
    assert layer.kernel.sharding == array.sharding  # where the array lives, as in Flax
    assert isinstance(layer.kernel.sharding, jax.sharding.Sharding)


def test_other_public_attributes_come_from_the_value_at_run_time() -> None:
    cell: Any = linear().kernel  # not visible to checkers, as in Flax: typos stay errors there
    assert cell.astype(jnp.int32).dtype == jnp.int32
    with pytest.raises(AttributeError, match="no attribute or metadata 'nonsense'"):
        cell.nonsense  # noqa: B018


# -- overridable get_value / set_value ----------------------------------------------
class Offset(nnx.Param[jax.Array]):
    """Reads as the stored value plus 3."""

    __slots__ = ()

    def get_value(self, *, index: Any = ...) -> jax.Array:
        return super().get_value() + 3 if index is ... else super().get_value(index=index) + 3


class Clipped(nnx.Param[jax.Array]):
    """Stores every write clipped to [0, 1]."""

    __slots__ = ()

    def set_value(self, value: Any, *, index: Any = ...) -> None:
        super().set_value(jnp.clip(value, 0.0, 1.0), index=index)


def test_an_overridden_get_value_is_what_every_read_sees() -> None:
    v = Offset(jnp.ones(2))
    np.testing.assert_array_equal(v[...], [4.0, 4.0])
    np.testing.assert_array_equal(v.value, [4.0, 4.0])
    np.testing.assert_array_equal(v + 1, [5.0, 5.0])
    np.testing.assert_array_equal(jnp.asarray(v), [4.0, 4.0])
    np.testing.assert_array_equal(v.T, [4.0, 4.0])
    np.testing.assert_array_equal(v.get_raw_value(), [1.0, 1.0])


def test_an_overridden_set_value_is_what_every_write_stores() -> None:
    v = Clipped(jnp.zeros(2))
    v[...] = jnp.array([5.0, -5.0])
    np.testing.assert_array_equal(v.get_raw_value(), [1.0, 0.0])
    v.value = jnp.array([0.5, 2.0])
    np.testing.assert_array_equal(v.get_raw_value(), [0.5, 1.0])
    v += 10.0
    np.testing.assert_array_equal(v.get_raw_value(), [1.0, 1.0])
    v.set_raw_value(jnp.array([7.0, 7.0]))  # bypasses the hook
    np.testing.assert_array_equal(v.get_raw_value(), [7.0, 7.0])


class Holder(nnx.Module):
    def __init__(self) -> None:
        self.w = Offset(jnp.ones(2))


def test_split_update_and_jit_move_raw_values_not_hooked_ones() -> None:
    model = Holder()
    _, state = nnx.split(model)
    np.testing.assert_array_equal(state.w, [1.0, 1.0])  # the stored value, not get_value's
    def double(a: jax.Array) -> jax.Array:
        return a * 2

    nnx.update(model, tree_map(double, state))
    np.testing.assert_array_equal(model.w.get_raw_value(), [2.0, 2.0])  # not 2 * (1 + 3)

    @nnx.jit
    def bump(m: Holder) -> jax.Array:
        m.w.set_raw_value(m.w.get_raw_value() + 1)
        return m.w[...]

    np.testing.assert_array_equal(bump(model), [6.0, 6.0])
    np.testing.assert_array_equal(model.w.get_raw_value(), [3.0, 3.0])


# -- the State is unchanged: plain arrays at the same paths --------------------------
class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 3, rngs=rngs)
        self.bn = nnx.BatchNorm(3, rngs=rngs)


def test_split_merge_jit_and_grad_give_plain_array_leaves_at_the_old_paths() -> None:
    model = Net(nnx.Rngs(0))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    assert params.paths == (("bn", "bias"), ("bn", "scale"), ("linear", "bias"), ("linear", "kernel"))
    assert stats.paths == (("bn", "mean"), ("bn", "var"))
    assert all(type(leaf) is type(W) for leaf in [*params.leaves, *stats.leaves])
    assert params.kind(("linear", "kernel")) is nnx.Param and stats.kind(("bn", "mean")) is nnx.BatchStat
    rebuilt = nnx.merge(graphdef, params, stats)
    assert isinstance(rebuilt.linear.kernel, nnx.Param)
    assert rebuilt.linear.kernel[...] is params.linear.kernel

    def loss(m: Net, x: jax.Array) -> jax.Array:
        return jnp.sum(m.bn(m.linear(x)) ** 2)

    x = jax.random.normal(jax.random.key(1), (4, 2))
    grads: nnx.State[Net] = nnx.grad(loss)(model, x)
    assert grads.paths == params.paths
    assert all(type(leaf) is type(W) for leaf in grads.leaves)

    mean_cell = model.bn.mean
    nnx.jit(loss)(model, x)
    assert model.bn.mean is mean_cell  # the transform wrote into the caller's cell
    assert not np.allclose(model.bn.mean[...], 0.0)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-10, 10, width=32), min_size=6, max_size=6))
def test_a_written_kernel_is_what_the_state_and_a_round_trip_hold(values: list[float]) -> None:
    layer = linear()
    w = jnp.asarray(values, jnp.float32).reshape(2, 3)
    layer.kernel[...] = w
    graphdef, state = nnx.split(layer)
    np.testing.assert_array_equal(state.kernel, w)
    back = nnx.merge(graphdef, state)
    np.testing.assert_array_equal(back.kernel[...], w)
    np.testing.assert_allclose(back(jnp.ones((1, 2))), layer(jnp.ones((1, 2))))
