"""Every layer that draws keys takes them three ways (``rngs=``, ``ctx=``, ``Module.init``),
and the layers that read flags or keys when called take ``ctx=`` too."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx

# Each factory builds a layer; ``kw`` holds its randomness (rngs= or ctx=, or nothing).
Factory = Callable[[dict[str, Any]], nnx.Module]
LAYERS: dict[str, Factory] = {
    "Linear": lambda kw: nnx.Linear(3, 4, **kw),
    "LinearGeneral": lambda kw: nnx.LinearGeneral(3, (2, 2), **kw),
    "Einsum": lambda kw: nnx.Einsum("bd,dk->bk", (3, 4), (4,), **kw),
    "Conv": lambda kw: nnx.Conv(3, 4, (3,), **kw),
    "ConvTranspose": lambda kw: nnx.ConvTranspose(3, 4, (3,), **kw),
    "Embed": lambda kw: nnx.Embed(5, 3, **kw),
    "MultiHeadAttention": lambda kw: nnx.MultiHeadAttention(2, 4, **kw),
    "LSTMCell": lambda kw: nnx.LSTMCell(3, 4, **kw),
    "GRUCell": lambda kw: nnx.GRUCell(3, 4, **kw),
    "LoRA": lambda kw: nnx.LoRA(3, 2, 4, **kw),
    "LoRALinear": lambda kw: nnx.LoRALinear(3, 4, lora_rank=2, **kw),
    "SimpleCell": lambda kw: nnx.SimpleCell(3, 4, **kw),
    "OptimizedLSTMCell": lambda kw: nnx.OptimizedLSTMCell(3, 4, **kw),
}
NORMS: dict[str, Factory] = {
    "BatchNorm": lambda kw: nnx.BatchNorm(3, scale_init=nnx.initializers.normal(), **kw),
    "LayerNorm": lambda kw: nnx.LayerNorm(3, scale_init=nnx.initializers.normal(), **kw),
    "RMSNorm": lambda kw: nnx.RMSNorm(3, scale_init=nnx.initializers.normal(), **kw),
    "GroupNorm": lambda kw: nnx.GroupNorm(4, num_groups=2, scale_init=nnx.initializers.normal(), **kw),
    "InstanceNorm": lambda kw: nnx.InstanceNorm(3, scale_init=nnx.initializers.normal(), **kw),
}


def params_of(layer: nnx.Module) -> list[np.ndarray[Any, Any]]:
    return [np.asarray(v) for v in nnx.state(layer, nnx.Param).leaves]


class Holder(nnx.Module):
    """What ``Module.init(key)(...)`` builds: a model whose layers get no key argument."""

    def __init__(self, make: Callable[[], nnx.Module]) -> None:
        self.layer = make()


@pytest.mark.parametrize("name", [*LAYERS, *NORMS])
def test_rngs_ctx_and_module_init_give_the_same_parameters(name: str) -> None:
    make = LAYERS.get(name) or NORMS[name]
    modern = make({"rngs": nnx.Rngs(0)})
    seed_003 = make({"ctx": nnx.context(0)})
    seed_000 = Holder.init(jax.random.key(0))(lambda: make({})).layer
    assert type(modern) is type(seed_003) is type(seed_000)
    for a, b, c in zip(params_of(modern), params_of(seed_003), params_of(seed_000), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    other = params_of(make({"rngs": nnx.Rngs(1)}))
    assert any(not np.array_equal(a, b) for a, b in zip(params_of(modern), other))


@pytest.mark.parametrize("name", list(LAYERS))
def test_a_layer_given_no_keys_names_the_three_ways(name: str) -> None:
    with pytest.raises(TypeError) as info:
        LAYERS[name]({})
    message = str(info.value)
    assert "rngs=nnx.Rngs(0)" in message and "ctx=nnx.context(0)" in message and "Module.init(key)" in message


@pytest.mark.parametrize("name", list(LAYERS))
def test_rngs_and_ctx_together_are_refused(name: str) -> None:
    with pytest.raises(TypeError, match="not both"):
        LAYERS[name]({"rngs": nnx.Rngs(0), "ctx": nnx.context(0)})


@pytest.mark.parametrize(
    "make",
    [lambda: nnx.BatchNorm(3), lambda: nnx.LayerNorm(3), lambda: nnx.RMSNorm(3), lambda: nnx.GroupNorm(4, num_groups=2), lambda: nnx.InstanceNorm(3)],
    ids=list(NORMS),
)
def test_norms_need_no_keys_with_their_default_initializers(make: Callable[[], nnx.Module]) -> None:
    assert all(np.all(p == 1.0) or np.all(p == 0.0) for p in params_of(make()))


def test_dropout_takes_its_keys_all_three_ways_and_at_call_time() -> None:
    x = jnp.ones((256,))
    modern = nnx.Dropout(0.5, rngs=nnx.Rngs(0))(x)
    seed_003 = nnx.Dropout(0.5, ctx=nnx.context(0))(x)
    seed_000 = Holder.init({"dropout": 0})(lambda: nnx.Dropout(0.5)).layer
    params_only = Holder.init(jax.random.key(0))(lambda: nnx.Dropout(0.5)).layer
    assert isinstance(params_only, nnx.Dropout) and params_only.rngs is None  # no dropout stream to fork
    assert isinstance(seed_000, nnx.Dropout)
    np.testing.assert_array_equal(modern, seed_003)
    np.testing.assert_array_equal(modern, seed_000(x))
    bare = nnx.Dropout(0.5)  # keys may come at call time instead
    by_ctx = bare(x, ctx=nnx.context(dropout=1))
    np.testing.assert_array_equal(by_ctx, bare(x, rngs=nnx.Rngs(dropout=1)))
    with pytest.raises(ValueError, match=r"ctx=nnx\.context\(dropout=key\)"):
        bare(x)


def test_dropout_flags_from_argument_ctx_and_attribute() -> None:
    x = jnp.ones((64,))
    layer = nnx.Dropout(0.5, rngs=nnx.Rngs(0))
    assert not np.array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, ctx=nnx.context(flags={"deterministic": True})), x)
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    assert not np.array_equal(layer(x, ctx=nnx.context(flags={"deterministic": False})), x)
    assert not np.array_equal(layer(x, deterministic=False, ctx=nnx.context(flags={"deterministic": True})), x)


def test_batch_norm_reads_use_running_average_from_every_spelling() -> None:
    x = jax.random.normal(jax.random.key(0), (8, 3)) + 2.0

    class Model(nnx.Module):
        def __init__(self) -> None:
            self.bn = nnx.BatchNorm(3)

        def __call__(self, x: jax.Array, *, ctx: nnx.Context | None = None) -> jax.Array:
            return self.bn(x, ctx=ctx)

    def moved(run: Callable[[Model], object], *, train: bool = True) -> bool:
        model = Model()
        model.train() if train else model.eval()
        before = np.asarray(nnx.state(model, nnx.BatchStat).leaves[0])
        run(model)
        return not np.array_equal(before, np.asarray(nnx.state(model, nnx.BatchStat).leaves[0]))

    assert moved(lambda m: m(x))
    assert not moved(lambda m: m(x), train=False)
    assert not moved(lambda m: m(x, ctx=nnx.context(flags={"use_running_average": True})))
    assert moved(lambda m: m(x, ctx=nnx.context(flags={"use_running_average": False})), train=False)
    assert moved(lambda m: m.apply(use_running_average=False)(x), train=False)
    assert not moved(lambda m: m.apply(use_running_average=True)(x))
    assert not moved(lambda m: m.bn(x, True, ctx=nnx.context(flags={"use_running_average": False})))


def test_attention_dropout_keys_from_ctx_at_call_time() -> None:
    layer = nnx.MultiHeadAttention(2, 4, dropout_rate=0.5, ctx=nnx.context(params=0))
    x = jax.random.normal(jax.random.key(1), (1, 3, 4))
    with pytest.raises(ValueError, match="random keys"):
        layer(x)
    a = layer(x, ctx=nnx.context(dropout=1))
    np.testing.assert_array_equal(a, layer(x, rngs=nnx.Rngs(dropout=1)))
    np.testing.assert_array_equal(layer(x, ctx=nnx.context(flags={"deterministic": True})), layer(x, deterministic=True))


def test_a_vmapped_seed_003_partition_merges_back() -> None:
    class Block(nnx.Module):
        def __init__(self, dim: int, *, ctx: nnx.Context) -> None:
            self.linear = nnx.Linear(dim, dim, ctx=ctx)
            self.dropout = nnx.Dropout(0.5)

    keys = jax.random.split(jax.random.key(0), 3)
    stacked = jax.vmap(lambda key: Block(4, ctx=nnx.context(params=key)).partition())(keys)  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]  # jax.vmap: an untyped lambda
    block = stacked.merge()
    assert isinstance(block, Block) and isinstance(block.linear, nnx.Linear)
    kernels = np.asarray(nnx.state(block)["linear"]["kernel"])
    assert kernels.shape == (3, 4, 4)
    one = Block(4, ctx=nnx.context(params=keys[1]))
    np.testing.assert_array_equal(kernels[1], np.asarray(nnx.state(one)["linear"]["kernel"]))
