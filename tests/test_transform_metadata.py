"""``nnx.transform_metadata`` and the ``transform_metadata=`` keyword of vmap and scan:
sharding names follow the axis a transform adds (Flax's layer-stack idiom)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest

import nnx

SEEN: list[Any] = []


class Layer(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.w = nnx.Param(jax.random.normal(rngs.params(), (3, 3)), sharding=("din", "dout"))
        self.b = nnx.Param(jnp.zeros((3,)), out_sharding=("dout",))  # Flax's key is kept in step too
        self.steps = nnx.BatchStat(jnp.zeros((), jnp.int32))  # no names: left alone

    def __call__(self, x: jax.Array) -> jax.Array:
        SEEN.append((self.w.get_metadata("sharding"), self.b.get_metadata("out_sharding")))
        return x @ self.w.value + self.b.value


LAYERS = {nnx.PARTITION_NAME: "layers"}


def stack(n: int = 4) -> Layer:
    @nnx.vmap(in_axes=0, out_axes=0, axis_size=n, transform_metadata=LAYERS)
    def init(rngs: nnx.Rngs) -> Layer:
        return Layer(rngs)

    return init(nnx.Rngs(0))


def test_vmap_adds_the_partition_name_at_the_stacked_axis() -> None:
    layers = stack()
    assert layers.w.shape == (4, 3, 3)
    assert layers.w.get_metadata("sharding") == ("layers", "din", "dout")
    assert layers.b.get_metadata("out_sharding") == ("layers", "dout")
    assert "sharding" not in layers.steps.get_metadata()


def test_scan_steps_see_one_layers_names_and_the_stack_keeps_its_own() -> None:
    layers = stack()
    SEEN.clear()

    @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry, transform_metadata=LAYERS)
    def forward(layer: Layer, x: jax.Array) -> jax.Array:
        return layer(x)

    y = forward(layers, jnp.ones((1, 3)))
    assert y.shape == (1, 3)
    assert SEEN == [(("din", "dout"), ("dout",))]  # traced once, with one layer's names
    assert layers.w.get_metadata("sharding") == ("layers", "din", "dout")
    assert layers.b.get_metadata("out_sharding") == ("layers", "dout")


def test_the_decorator_spelling_is_the_keyword() -> None:
    @nnx.vmap(in_axes=0, out_axes=0, axis_size=2)
    @nnx.transform_metadata(in_axes=0, out_axes=0, partition="layers")
    def init(rngs: nnx.Rngs) -> Layer:
        return Layer(rngs)

    assert init(nnx.Rngs(0)).w.get_metadata("sharding") == ("layers", "din", "dout")


def test_state_axes_choose_which_variables_take_the_name() -> None:
    @nnx.vmap(in_axes=0, out_axes=0, axis_size=2)
    @nnx.transform_metadata(in_axes=0, out_axes=nnx.StateAxes({nnx.PathContains("w"): 0, ...: None}), partition="p")
    def init(rngs: nnx.Rngs) -> Layer:
        return Layer(rngs)

    layers = init(nnx.Rngs(0))
    assert layers.w.get_metadata("sharding") == ("p", "din", "dout")
    assert layers.b.get_metadata("out_sharding") == ("dout",)


def test_a_mapped_axis_named_otherwise_is_refused_and_changes_nothing() -> None:
    layers = stack()

    @nnx.transform_metadata(in_axes=(0,), out_axes=None, partition="experts")
    def touch(layer: Layer) -> None:
        raise AssertionError("not reached")

    with pytest.raises(ValueError, match=r"Param at args\[0\]\.b has out_sharding=\('layers', 'dout'\).*named 'experts'"):
        touch(layers)
    assert layers.w.get_metadata("sharding") == ("layers", "din", "dout")  # all checked before any change
    assert layers.b.get_metadata("out_sharding") == ("layers", "dout")


def test_the_names_come_back_when_the_function_raises() -> None:
    layers = stack()

    @nnx.transform_metadata(in_axes=(0,), out_axes=None, partition="layers")
    def fail(layer: Layer) -> None:
        assert layer.w.get_metadata("sharding") == ("din", "dout")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail(layers)
    assert layers.w.get_metadata("sharding") == ("layers", "din", "dout")


def test_a_transform_metadata_without_the_partition_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"has no 'partition_name' entry"):
        nnx.vmap(Layer, axis_size=2, transform_metadata={"other": "x"})
