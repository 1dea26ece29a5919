"""The RNG API Flax 0.12 users reach for: stream lookup, split/broadcast/fork of
streams, the ``jax.random`` helpers, and split_rngs / fork_rngs / with_rngs /
reseed over the streams of a whole graph."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx
from typed_jax import jit as typed_jit


def data(key: jax.Array) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


def nth_key(seed: int, n: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), n)


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 3, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dropout(self.linear(x))


# -- Rngs and RngStream ------------------------------------------------------------


def test_stream_takes_key_first_and_tag_by_keyword() -> None:
    s = nnx.RngStream(3, tag="noise")
    assert s.tag == "noise"
    np.testing.assert_array_equal(data(s()), data(nth_key(3, 0)))


def test_rngs_is_a_mapping_of_streams() -> None:
    rngs = nnx.Rngs(0, params=1)
    assert rngs["params"] is rngs.params
    assert rngs["dropout"] is rngs.default  # falls back like attribute access
    assert "params" in rngs and "dropout" not in rngs and 3 not in rngs
    assert list(rngs) == ["default", "params"] and len(rngs) == 2
    assert [name for name, _ in rngs.items()] == ["default", "params"]


def test_missing_stream_names_itself_in_key_and_attribute_errors() -> None:
    rngs = nnx.Rngs(params=0)
    with pytest.raises(KeyError, match="No RngStream named 'dropout'"):
        rngs["dropout"]
    with pytest.raises(AttributeError, match="No RngStream named 'dropout'.*nnx.Rngs\\(dropout=seed\\)"):
        rngs.dropout()


def test_rngs_accepts_streams_as_seeds() -> None:
    source = nnx.Rngs(params=5)
    source.params()
    rngs = nnx.Rngs(params=source.params)
    assert rngs.params is not source.params
    assert int(rngs.params.count.value) == 0  # the key, not the count
    np.testing.assert_array_equal(data(rngs.params()), data(nth_key(5, 0)))


def test_random_helpers_draw_the_next_key() -> None:
    rngs = nnx.Rngs(0, params=1)
    np.testing.assert_allclose(rngs.normal((2, 3)), jax.random.normal(nth_key(0, 0), (2, 3)))
    np.testing.assert_allclose(rngs.params.uniform((4,)), jax.random.uniform(nth_key(1, 0), (4,)))
    np.testing.assert_allclose(rngs.bernoulli(0.5, (5,)), jax.random.bernoulli(nth_key(0, 1), 0.5, (5,)))
    init = rngs.params.lecun_normal()
    assert int(rngs.params.count.value) == 1  # configuring draws nothing
    np.testing.assert_allclose(init((3, 2)), jax.nn.initializers.lecun_normal()(nth_key(1, 1), (3, 2)))
    assert init((3, 2), jnp.float16).dtype == jnp.float16


def test_a_stream_named_like_a_helper_wins_over_it() -> None:
    rngs = nnx.Rngs(normal=0)
    assert isinstance(rngs.normal, nnx.RngStream)


def test_split_and_broadcast_streams() -> None:
    rngs = nnx.Rngs(params=1, dropout=2, noise=3)
    split = rngs.split({"params": 5, "dropout": None, ...: (2, 5)})
    assert split.params.key.shape == (5,)
    assert split.dropout.key.shape == ()
    assert split.noise.key.shape == (2, 5)
    assert split.params() .shape == (5,)
    # a kept stream restarts from its key; split ones each drew one key
    assert int(rngs.dropout.count.value) == 0 and int(rngs.params.count.value) == 1
    keys = data(split.params.key.value)
    assert len({tuple(k) for k in keys}) == 5

    b = nnx.Rngs(0).broadcast(4)
    assert b.default.key.shape == (4,) and b.default.count.shape == (4,)
    assert len({tuple(k) for k in data(b.default())}) == 1  # all members draw the same key


def test_fork_with_a_mapping_splits_only_selected_streams() -> None:
    forked = nnx.Rngs(params=0, dropout=1).fork({"params": 3})
    assert forked.params.key.shape == (3,)
    assert forked.dropout.key.shape == ()


# -- split_rngs / fork_rngs / with_rngs ---------------------------------------------


def test_split_rngs_in_place_and_restore() -> None:
    rngs = nnx.Rngs(params=0, dropout=1)
    backups = nnx.split_rngs(rngs, splits=5, only="params")
    assert rngs.params.key.shape == (5,) and rngs.params.count.shape == (5,)
    assert rngs.dropout.key.shape == ()
    assert len(backups) == 1
    nnx.restore_rngs(backups)
    assert rngs.params.key.value.ndim == 0
    assert int(rngs.params.count.value) == 1  # the one draw the split made


def test_split_rngs_on_a_copy_leaves_the_original_keys() -> None:
    rngs = nnx.Rngs(params=0, dropout=1)
    key_cell = rngs.params.key
    copy = nnx.split_rngs(rngs, splits=(2, 3), graph_updates=False)
    assert copy.params.key.shape == (2, 3) and copy.dropout.key.shape == (2, 3)
    assert rngs.params.key is key_cell and rngs.params.key.shape == ()
    assert int(rngs.params.count.value) == 1


def test_split_rngs_squeeze_keeps_one_new_key() -> None:
    rngs = nnx.Rngs(0)
    with nnx.split_rngs(rngs, splits=1, squeeze=True):
        assert rngs.default.key.shape == ()
        np.testing.assert_array_equal(data(rngs.default.key.value), data(jax.random.split(nth_key(0, 0), 1)[0]))
    with pytest.raises(ValueError, match="squeeze=True needs splits=1"):
        nnx.split_rngs(rngs, splits=2, squeeze=True)


def test_split_rngs_decorator_with_vmap_gives_members_different_keys() -> None:
    @nnx.split_rngs(splits=4)
    @nnx.vmap(in_axes=0, out_axes=0)
    def create(rngs: nnx.Rngs) -> Model:
        return Model(rngs)

    rngs = nnx.Rngs(params=0, dropout=1)
    model = create(rngs)
    kernels = np.asarray(model.linear.kernel)
    assert kernels.shape == (4, 2, 3)
    assert not np.allclose(kernels[0], kernels[1])
    assert rngs.params.key.shape == () and int(rngs.params.count.value) == 1


def test_split_rngs_decorator_restores_when_the_function_raises() -> None:
    rngs = nnx.Rngs(params=0)
    before = data(rngs.params.key.value)

    @nnx.split_rngs(splits=3)
    def boom(r: nnx.Rngs) -> None:
        assert r.params.key.shape == (3,)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        boom(rngs)
    np.testing.assert_array_equal(data(rngs.params.key.value), before)
    assert int(rngs.params.count.value) == 0


def test_split_rngs_of_a_split_stream_raises_and_changes_nothing() -> None:
    rngs = nnx.Rngs(params=0, dropout=1)
    nnx.split_rngs(rngs, splits=2, only="dropout")
    counts = (int(rngs.params.count.value), np.asarray(rngs.dropout.count.value).tolist())
    with pytest.raises(ValueError, match="'dropout' stream: its key is already split"):
        nnx.split_rngs(rngs, splits=3)
    assert rngs.params.key.shape == ()
    assert (int(rngs.params.count.value), np.asarray(rngs.dropout.count.value).tolist()) == counts


def test_split_rngs_finds_streams_inside_modules_and_pytrees() -> None:
    model = Model(nnx.Rngs(params=0, dropout=1))
    tree: dict[str, Any] = {"m": model, "extra": [nnx.RngStream(2, tag="noise")]}
    def key_shapes() -> set[tuple[int, ...]]:
        return {tuple(k.shape) for k in nnx.state(model, nnx.RngKey).leaves}

    assert key_shapes() == {()}
    with nnx.split_rngs(tree, splits=3) as backups:
        assert key_shapes() == {(3,)}
        assert tree["extra"][0].key.shape == (3,)
        assert len(backups) == 2
    assert key_shapes() == {()}


def test_fork_rngs_in_place_and_on_a_copy() -> None:
    rngs = nnx.Rngs(params=0, dropout=1)
    original = data(rngs.params.key.value)
    backups = nnx.fork_rngs(rngs, split={"params": 2, ...: None})
    assert rngs.params.key.shape == (2,)
    assert rngs.dropout.key.shape == () and not np.array_equal(data(rngs.dropout.key.value), original)
    nnx.restore_rngs(backups)
    np.testing.assert_array_equal(data(rngs.params.key.value), original)

    copy = nnx.fork_rngs(rngs, graph_updates=False)
    np.testing.assert_array_equal(data(rngs.params.key.value), original)
    np.testing.assert_array_equal(data(copy.params.key.value), data(nth_key(0, 1)))


def test_with_rngs_rules() -> None:
    rngs = nnx.Rngs(params=0, dropout=1, noise=2)
    out = nnx.with_rngs(rngs, split={"params": 4}, broadcast={"noise": 3}, fork=...)
    assert out.params.key.shape == (4,)
    assert out.noise.key.shape == (3,)
    assert out.dropout.key.shape == () and not np.array_equal(data(out.dropout.key.value), data(rngs.dropout.key.value))
    assert rngs.params.key.shape == ()

    untouched = nnx.with_rngs(rngs, fork="params")
    assert untouched.dropout is not rngs.dropout
    np.testing.assert_array_equal(data(untouched.dropout.key.value), data(rngs.dropout.key.value))

    limited = nnx.with_rngs(rngs, split=2, only=nnx.Not("params"))
    assert limited.params.key.shape == () and limited.dropout.key.shape == (2,)


def test_with_rngs_conflicting_rules_raise_and_change_nothing() -> None:
    rngs = nnx.Rngs(params=0, dropout=1)
    with pytest.raises(ValueError, match="multiple rules"):
        nnx.with_rngs(rngs, split={"params": 4}, fork="params")
    assert int(rngs.params.count.value) == 0 and int(rngs.dropout.count.value) == 0
    with pytest.raises(ValueError, match="no in-place form"):
        nnx.with_rngs(rngs, split=2, graph_updates=True)


def test_with_rngs_decorator_passes_the_copy() -> None:
    rngs = nnx.Rngs(params=0)

    @nnx.with_rngs(split=4)
    def shapes(r: nnx.Rngs) -> tuple[int, ...]:
        return tuple(r.params.key.shape)

    assert shapes(rngs) == (4,)
    assert rngs.params.key.shape == ()


def test_copy_shares_cells_other_than_the_streams() -> None:
    model = Model(nnx.Rngs(params=0, dropout=1))
    copy = nnx.split_rngs(model, splits=2, graph=False)
    assert copy is not model and copy.linear.kernel is model.linear.kernel
    assert {tuple(k.shape) for k in nnx.state(copy, nnx.RngKey).leaves} == {(2,)}
    assert {tuple(k.shape) for k in nnx.state(model, nnx.RngKey).leaves} == {()}


# -- reseed --------------------------------------------------------------------------


def test_reseed_replays_dropout() -> None:
    model = Model(nnx.Rngs(params=0, dropout=42))
    x = jnp.ones((1, 2))
    y1 = model(x)
    assert not np.allclose(model(x), y1)
    nnx.reseed(model, dropout=42)
    np.testing.assert_allclose(model(x), y1)


def test_reseed_policies() -> None:
    rngs = nnx.Rngs(params=0)
    nnx.split_rngs(rngs, splits=3)
    with pytest.raises(ValueError, match=r"holds keys of shape \(3,\).*match_shape"):
        nnx.reseed(rngs, params=1)
    assert int(np.asarray(rngs.params.count.value)[0]) == 0 and rngs.params.key.shape == (3,)
    nnx.reseed(rngs, policy="match_shape", params=1)
    np.testing.assert_array_equal(data(rngs.params.key.value), data(jax.random.split(nth_key(1, 0), 3)))
    with pytest.raises(ValueError, match="policy must be"):
        nnx.reseed(rngs, policy="nope", params=1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


# -- invariants ------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=3),
    draws=st.integers(0, 3),
    splits=st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 3), st.integers(1, 3))),
)
def test_split_then_restore_gives_back_the_same_keys(seeds: list[int], draws: int, splits: int | tuple[int, int]) -> None:
    rngs = nnx.Rngs(**{f"s{i}": seed for i, seed in enumerate(seeds)})
    for _ in range(draws):
        rngs.s0()
    keys = {name: data(s.key.value) for name, s in rngs.items()}
    counts = {name: int(s.count.value) for name, s in rngs.items()}
    expected_split = {name: jax.random.split(jax.random.fold_in(s.key.value, s.count.value), splits) for name, s in rngs.items()}
    with nnx.split_rngs(rngs, splits=splits):
        for name, s in rngs.items():
            np.testing.assert_array_equal(data(s.key.value), data(expected_split[name]))
    for name, s in rngs.items():
        np.testing.assert_array_equal(data(s.key.value), keys[name])
        assert int(s.count.value) == counts[name] + 1


def test_split_rngs_inside_a_jax_transform_on_outside_streams_changes_nothing() -> None:
    inner = nnx.Rngs(a=0)
    outer = nnx.Rngs(b=1)
    errors: list[str] = []

    @typed_jit
    def f(x: jax.Array) -> jax.Array:
        mine = nnx.Rngs(c=2)  # made in this trace: writable
        try:
            nnx.split_rngs((mine, inner, outer), splits=2)
        except nnx.TraceContextError as e:
            errors.append(str(e))
        assert mine.c.key.shape == ()  # not written either: the check precedes every write
        return x

    f(jnp.zeros(()))
    assert errors and "created outside the JAX transform" in errors[0]
    assert inner.a.key.shape == () and outer.b.key.shape == ()
    assert int(inner.a.count.value) == 0


def test_fork_without_split_draws_a_new_key_per_stream() -> None:
    # Regression: Rngs.fork() copied each stream's key instead of drawing a new one,
    # so a forked Rngs repeated its parent's keys (Flax: fork() draws one key per stream).
    rngs = nnx.Rngs(params=0, dropout=1)
    forked = rngs.fork()
    assert int(rngs.params.count.value) == 1 and int(rngs.dropout.count.value) == 1
    for name in ("params", "dropout"):
        parent_key = nnx.Rngs(params=0, dropout=1).stream(name)()  # what the parent drew for the fork
        np.testing.assert_array_equal(data(forked.stream(name).key.value), data(parent_key))
        assert int(forked.stream(name).count.value) == 0
    assert not np.array_equal(data(forked.params()), data(nnx.Rngs(params=0).params()))


def test_a_stream_name_as_filter_gets_the_translation_that_works() -> None:
    # Flax reads split(m, ..., 'dropout') as the 'dropout' stream's cells; in nnx a string
    # names a collection, and the error spells the filter that selects the stream.
    rngs = nnx.Rngs(params=0, dropout=1)
    with pytest.raises(ValueError, match=r"nnx.All\(nnx.RngState, nnx.PathContains\('dropout'\)\)"):
        nnx.split(rngs, nnx.RngCount, "dropout", ...)  # type: ignore[arg-type, nnx-collection]  # the mistake under test
    _, counts, dropout_key, rest = nnx.split(rngs, nnx.RngCount, nnx.All(nnx.RngState, nnx.PathContains("dropout")), ...)
    assert set(dropout_key.paths) == {("dropout", "key")}
    assert set(counts.paths) == {("dropout", "count"), ("params", "count")}
    assert set(rest.paths) == {("params", "key")}
