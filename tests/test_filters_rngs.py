"""Filters and Rngs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Count(nnx.Variable[jax.Array]):
    pass


class LoRAParam(nnx.Param[jax.Array]):
    pass


class M(nnx.Module):
    def __init__(self) -> None:
        self.enc = nnx.Dict(w=nnx.Param(jnp.ones(2)), a=LoRAParam(jnp.ones(2)))
        self.dec = nnx.Dict(w=nnx.Param(jnp.ones(2)), n=Count(jnp.array(0)))
        self.buf = np.zeros(3)


def paths(m: nnx.Module, f: nnx.Filter) -> set[str]:
    return {".".join(map(str, p)) for p in nnx.state(m, f).paths}


def test_filter_spellings() -> None:
    m = M()
    assert paths(m, nnx.Param) == {"enc.w", "enc.a", "dec.w"}  # subkinds match
    assert paths(m, "params") == {"enc.w", "enc.a", "dec.w"}
    assert paths(m, LoRAParam) == {"enc.a"}
    assert paths(m, ...) == {"enc.w", "enc.a", "dec.w", "dec.n", "buf"}
    assert paths(m, nnx.Not(nnx.Param)) == {"dec.n", "buf"}
    assert paths(m, nnx.All(nnx.Param, nnx.PathContains("dec"))) == {"dec.w"}
    assert paths(m, nnx.Any(Count, nnx.buffers)) == {"dec.n", "buf"}
    assert paths(m, (Count, LoRAParam)) == {"dec.n", "enc.a"}
    def ends_in_w(path: tuple[str | int, ...], value: object) -> bool:
        return path[-1] == "w"

    assert paths(m, ends_in_w) == {"enc.w", "dec.w"}
    assert paths(m, nnx.buffers) == {"buf"}


def test_first_matching_filter_wins() -> None:
    params, rest = nnx.state(M(), LoRAParam, nnx.Param)
    assert {p[-1] for p in params.paths} == {"a"}
    assert {p[-1] for p in rest.paths} == {"w"}


def test_rngs_determinism_and_fallback() -> None:
    a, b = nnx.Rngs(params=0, dropout=1), nnx.Rngs(params=0, dropout=1)
    assert jnp.array_equal(jax.random.key_data(a.params()), jax.random.key_data(b.params()))
    k1, k2 = a.params(), a.params()
    assert not jnp.array_equal(jax.random.key_data(k1), jax.random.key_data(k2))
    r = nnx.Rngs(0)
    assert r.dropout().shape == ()  # falls back to default
    with pytest.raises(AttributeError, match=r"No RngStream named 'dropout' found in Rngs, and no 'default'"):
        nnx.Rngs(params=0).dropout()


def test_rng_counters_are_state_and_survive_split_merge() -> None:
    class Holder(nnx.Module):
        def __init__(self) -> None:
            self.rngs = nnx.Rngs(0)

    h = Holder()
    h.rngs.params()
    g, s = nnx.split(h)
    assert int(s.rngs.default.count) == 1
    h2 = nnx.merge(g, s)
    assert jnp.array_equal(jax.random.key_data(h2.rngs()), jax.random.key_data(h.rngs()))
    rng_state = nnx.state(h, nnx.RngState)
    assert set(rng_state.paths) == {("rngs", "default", "count"), ("rngs", "default", "key")}


def test_rngs_fork_and_split_for_vmap() -> None:
    r = nnx.Rngs(params=0)
    forked = r.split(4)
    assert forked.params.key.value.shape == (4,)
    keys = forked.params()
    assert keys.shape == (4,)
    data = jax.random.key_data(keys)
    assert len({tuple(np.asarray(k).tolist()) for k in data}) == 4
    assert int(r.params.count.value) == 1  # forking consumed one key of the parent


def test_equal_filters_share_one_cache_entry() -> None:
    m = M()
    layout = nnx.graphdef(m).layout
    for _ in range(5):
        nnx.state(m, nnx.Not(nnx.Param))
    keys: list[object] = [k for k in layout._splits if isinstance(k, tuple) and k and k[0] == (nnx.Not(nnx.Param),)]
    assert len(keys) == 1
