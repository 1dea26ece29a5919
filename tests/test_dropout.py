"""nnx.Dropout: masks, scaling, deterministic mode, keys as state, parity with Flax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from parity import assert_close, fnnx

import nnx
from typed_jax import jit


def test_drops_about_rate_and_rescales_the_rest() -> None:
    dropout = nnx.Dropout(0.25, rngs=nnx.Rngs(0))
    y = dropout(jnp.ones((200, 100)))
    kept = y != 0
    assert 0.72 < float(kept.mean()) < 0.78
    assert_close(y[kept], jnp.full(int(kept.sum()), 1 / 0.75))


def test_every_call_draws_a_new_mask_and_the_key_is_state() -> None:
    rngs = nnx.Rngs(0)
    dropout = nnx.Dropout(0.5, rngs=rngs)
    count = int(rngs.default.count.value)
    x = jnp.ones((64,))
    a, b = dropout(x), dropout(x)
    assert not jnp.array_equal(a, b)
    assert int(rngs.default.count.value) == count  # the layer drew from its own forked stream
    counts = nnx.state(dropout, nnx.RngCount)
    assert [int(v) for v in counts.leaves] == [2]


def test_deterministic_modes() -> None:
    x = jnp.arange(10.0)
    dropout = nnx.Dropout(0.9, deterministic=True, rngs=nnx.Rngs(0))
    assert jnp.array_equal(dropout(x), x)
    assert not jnp.array_equal(dropout(x, deterministic=False), x)
    model = nnx.Sequential(nnx.Linear(10, 10, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(1)))
    model.eval()
    assert jnp.array_equal(model(x), model(x))
    model.train()
    assert not jnp.array_equal(model(x), model(x))


def test_rate_edges() -> None:
    x = jnp.ones((5,))
    assert jnp.array_equal(nnx.Dropout(0.0)(x), x)  # no Rngs needed when nothing is dropped
    assert jnp.array_equal(nnx.Dropout(1.0, rngs=nnx.Rngs(0))(x), jnp.zeros(5))
    with pytest.raises(ValueError, match=r"rate=1.5"):
        nnx.Dropout(1.5)


def test_missing_rngs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no `rngs` argument was provided to Dropout, and it keeps no stream"):
        nnx.Dropout(0.5)(jnp.ones(3))
    # call-time rngs work for a layer built without any
    assert nnx.Dropout(0.5)(jnp.ones(3), rngs=nnx.Rngs(dropout=0)).shape == (3,)


def test_broadcast_dims_share_the_mask() -> None:
    y = nnx.Dropout(0.5, broadcast_dims=(0,), rngs=nnx.Rngs(0))(jnp.ones((8, 32)))
    assert jnp.array_equal(y, jnp.broadcast_to(y[0], (8, 32)))


def test_keys_advance_through_split_merge_under_jit() -> None:
    dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(dropout)

    @jit
    def forward(state: nnx.State[nnx.Dropout], x: jax.Array) -> tuple[jax.Array, nnx.State[nnx.Dropout]]:
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    x = jnp.ones((64,))
    a, state = forward(state, x)
    b, state = forward(state, x)
    assert not jnp.array_equal(a, b)
    nnx.update(dropout, state)
    assert [int(v) for v in nnx.state(dropout, nnx.RngCount).leaves] == [2]


def test_dropout_matches_flax_with_the_same_key() -> None:
    x = jax.random.normal(jax.random.key(0), (4, 16))
    ours = nnx.Dropout(0.3, broadcast_dims=(0,))(x, rngs=nnx.Rngs(dropout=7))
    theirs = fnnx.Dropout(0.3, broadcast_dims=(0,))(x, rngs=fnnx.Rngs(dropout=7))
    assert_close(ours, theirs)


def test_holds_one_rng_stream_as_flax_does() -> None:
    dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=0))
    assert isinstance(dropout.rngs, nnx.RngStream) and dropout.rngs.tag == "dropout"
    assert set(nnx.state(dropout).paths) == {("rngs", "key"), ("rngs", "count")}
    from_stream = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=0).dropout)  # a stream is forked too
    x = jnp.ones((4, 16))
    assert_close(dropout(x), from_stream(x))


def test_call_time_keys_from_rngs_stream_or_key() -> None:
    # rngs= at call time may be an Rngs (its rng_collection stream), a stream, or a key,
    # and takes precedence over the layer's own stream, which does not move.
    dropout = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=3))
    own = dropout.rngs
    assert own is not None
    x = jnp.ones((4, 16))
    key = jax.random.key(7)
    from_key = dropout(x, rngs=key)
    assert_close(from_key, nnx.Dropout(0.5)(x, rngs=key))
    via_stream = dropout(x, rngs=nnx.RngStream(7, tag="dropout"))
    via_rngs = dropout(x, rngs=nnx.Rngs(dropout=7))
    assert_close(via_stream, via_rngs)
    assert int(own.count.value) == 0
    with pytest.raises(TypeError, match="Dropout: rngs=.* is not random keys"):
        dropout(x, rngs=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
