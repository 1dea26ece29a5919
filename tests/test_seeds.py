"""The code examples of the seed documents (/work/shared/seeds), run as tests.

Each test's docstring names the seed and the example. The code follows the seed
as closely as the core library allows; every change to the seed's code is
marked with a ``# FIX:`` comment saying what was wrong (typos such as
``jax.zeros``, ``key``/``keys``, ``nn.Module``) or what was replaced.

Every seed example that uses ``nnx.Linear``, ``nnx.BatchNorm``, ``nnx.Dropout``,
``nnx.relu`` or ``nnx.gelu`` runs with the library's own layers, in the seed's own
spelling of randomness: nothing inside ``Module.init(key)(...)`` (seed 000),
``ctx=nnx.context(...)`` (seed 003), ``rngs=nnx.Rngs(...)`` (seeds 001/002).
Examples that need the lifted transforms (``nnx.jit``, ``nnx.grad``,
``nnx.Optimizer``) or ``nnx.display`` are left out.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import random

import nnx
from typed_jax import grad_with_aux, jit, scan, tree_map, value_and_grad, vmap


def array(x: Any) -> np.ndarray[Any, Any]:
    """The value of a layer's parameter, whether it is read as an array or a cell."""
    return np.asarray(x)


def leaf_paths(state: nnx.State[Any]) -> set[str]:
    return {".".join(map(str, p)) for p in state.paths}


def all_close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a), np.asarray(b)))


def double(x: jax.Array) -> jax.Array:
    return x * 2.0


def sgd(lr: float) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The SGD step the seeds write as ``lambda w, g: w - lr * g``."""

    def step(w: jax.Array, g: jax.Array) -> jax.Array:
        return w - lr * g

    return step


# == seed 000: early descriptor design =========================================


class Linear000(nnx.Module):
    # Seed 000, "Getting Started" (the seed calls it Linear).

    # mark parameter fields
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()

    def __init__(self, din: int, dout: int) -> None:
        key = self.make_rng("params")  # request an RNG key
        self.w = jax.random.uniform(key, (din, dout))
        self.b = jax.numpy.zeros((dout,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


def test_000_linear_declared_fields_and_init() -> None:
    """Seed 000, "Getting Started": ``Linear`` with ``w``/``b`` declared by ``nnx.param()``,
    ``self.make_rng("params")`` in ``__init__``, built by ``Linear.init(jax.random.PRNGKey(0))(12, 2)``.
    Also the ``model["params"]`` read/write idiom (from the SGD line of the seed's train_step)."""
    model = Linear000.init(jax.random.PRNGKey(0))(12, 2)

    # declared fields read as arrays and live in Param cells
    assert isinstance(model.w, jax.Array) and model.w.shape == (12, 2)
    assert model.b.shape == (2,) and not model.b.any()
    assert isinstance(nnx.cell(model, "w"), nnx.Param)
    x = jnp.ones((3, 12))
    assert all_close(model(x), x @ model.w + model.b)

    # reproducible: the same key gives the same weights, another key other weights
    again = Linear000.init(jax.random.PRNGKey(0))(12, 2)
    other = Linear000.init(jax.random.PRNGKey(1))(12, 2)
    assert all_close(again.w, model.w)
    assert not all_close(other.w, model.w)

    # make_rng only works inside Module.init(key)(...)
    with pytest.raises(RuntimeError, match="outside Module.init"):
        Linear000(12, 2)

    # model["params"]: read the collection, write it back in place
    params = model["params"]
    assert leaf_paths(params) == {"w", "b"}
    cell_w = nnx.cell(model, "w")
    model["params"] = tree_map(double, params)  # FIX: jax.tree_map -> jax.tree.map
    assert nnx.cell(model, "w") is cell_w  # written into the existing cell
    assert all_close(model.w, 2.0 * params["w"])


def test_000_linear_with_nnx_ref() -> None:
    """Seed 000, "Getting Started" prose: "the ``w`` field is marked as a parameter using
    ``nnx.ref``": the same Linear with ``w = nnx.ref("params")`` declares a Param too."""

    class LinearRef(nnx.Module):
        w: jax.Array = nnx.ref("params")
        b: jax.Array = nnx.param()

        def __init__(self, din: int, dout: int) -> None:
            key = self.make_rng("params")
            self.w = jax.random.uniform(key, (din, dout))
            self.b = jax.numpy.zeros((dout,))

        def __call__(self, x: jax.Array) -> jax.Array:
            return x @ self.w + self.b

    model = LinearRef.init(jax.random.PRNGKey(0))(12, 2)
    reference = Linear000.init(jax.random.PRNGKey(0))(12, 2)
    assert type(nnx.cell(model, "w")) is nnx.Param
    assert leaf_paths(model["params"]) == {"w", "b"}
    assert all_close(model.w, reference.w)


def test_000_shared_state_block_model_apply_flags() -> None:
    """Seed 000, "Shared State": ``Block`` holding a shared ``nnx.Linear`` and an
    ``nnx.BatchNorm(2)``, ``Model`` with two Blocks sharing one ``nnx.Linear(2, 2)`` (no
    rngs argument: the keys come from ``Model.init(key)``), ``loss_fn`` calling
    ``model.apply(use_running_average=False)(x)``; the shared Linear stays in sync through
    a gradient update written with ``model["params"] = ...``."""

    class Block(nnx.Module):
        def __init__(self, linear: nnx.Linear) -> None:
            self.linear = linear
            self.bn = nnx.BatchNorm(2)

        def __call__(self, x: jax.Array) -> jax.Array:
            return nnx.relu(self.bn(self.linear(x)))

    class Model(nnx.Module):
        def __init__(self) -> None:
            shared = nnx.Linear(2, 2)
            self.block1 = Block(shared)
            self.block2 = Block(shared)

        def __call__(self, x: jax.Array) -> jax.Array:
            x = self.block1(x)
            x = self.block2(x)
            return x

    def loss_fn(model: Model, x: jax.Array, y: jax.Array) -> jax.Array:
        y_pred = model.apply(use_running_average=False)(x)
        return jnp.mean((y - y_pred) ** 2)

    # (the seed does not show construction: its layers draw keys from Module.init)
    model = Model.init(jax.random.PRNGKey(0))()
    assert model.block1.linear is model.block2.linear
    assert model.block1.bn is not model.block2.bn
    # the key of Model.init decides the weights
    again, other = Model.init(jax.random.PRNGKey(0))(), Model.init(jax.random.PRNGKey(1))()
    assert all_close(again.block1.linear.kernel, model.block1.linear.kernel)
    assert not all_close(other.block1.linear.kernel, model.block1.linear.kernel)
    # outside Module.init (and with no rngs= / ctx=) a layer that needs keys says how to give them
    with pytest.raises(TypeError, match=r"rngs=nnx\.Rngs\(0\).*ctx=nnx\.context\(0\).*Module\.init\(key\)"):
        Model()
    # the shared Linear appears once in the state
    params = model["params"]
    assert leaf_paths(params) == {
        "block1.linear.kernel", "block1.linear.bias",
        "block1.bn.scale", "block1.bn.bias", "block2.bn.scale", "block2.bn.bias",
    }

    x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    y = jax.random.normal(jax.random.PRNGKey(2), (16, 2))

    # apply sets the flag for the call only, on every BatchNorm
    model.eval()  # the modern spelling of use_running_average=True (and deterministic=True)
    assert model.block1.bn.use_running_average and model.block2.bn.use_running_average
    stats_before = model["batch_stats"]
    loss = loss_fn(model, x, y)
    assert jnp.isfinite(loss)
    assert model.block1.bn.use_running_average and model.block2.bn.use_running_average  # restored
    stats_after = model["batch_stats"]
    for before, after in zip(stats_before.leaves, stats_after.leaves):
        assert not all_close(before, after)  # use_running_average=False updated every stat
    stats_before = stats_after
    model.apply(use_running_average=True)(x)
    assert model["batch_stats"] == stats_before  # running averages used, nothing updated
    model.train()  # the same flag again, set for good: the stats move
    model(x)
    assert model["batch_stats"] != stats_before
    with pytest.raises(AttributeError, match="no submodule has flag"):
        model.apply(use_runing_average=True)(x)

    # gradient step (the seed uses nnx.grad; here plain jax.grad over split/merge)
    graphdef = nnx.graphdef(model)
    rest = nnx.state(model, nnx.Not("params"))

    def pure_loss(params: nnx.State[Model]) -> jax.Array:
        m = nnx.merge(graphdef, params, rest)
        return loss_fn(m, x, y)

    params = model["params"]
    loss0, grad = value_and_grad(pure_loss)(params)
    shared = model.block1.linear
    w_before = array(shared.kernel)
    model["params"] = tree_map(sgd(0.1), model["params"], grad)  # FIX: jax.tree_map
    assert model.block1.linear is model.block2.linear is shared
    assert not all_close(shared.kernel, w_before)
    assert all_close(shared.kernel, w_before - 0.1 * grad["block1"]["linear"]["kernel"])
    assert pure_loss(model["params"]) < loss0


# == seed 001: modern Flax-NNX-like API ========================================


class Linear001(nnx.Module):
    # Seed 001's Linear.
    def __init__(self, fin: int, fout: int, *, rngs: nnx.Rngs) -> None:  # FIX: nn.Module -> nnx.Module
        key = rngs.params()  # FIX: `keys=` but `key` used below
        self.din, self.dout = fin, fout  # FIX: LoraLinear reads linear.din / linear.dout
        self.w = nnx.Param(jax.random.uniform(key, (fin, fout)))
        self.b = nnx.Param(jnp.zeros((fout,)))  # FIX: jax.zeros -> jnp.zeros

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.dot(x, self.w.value) + self.b.value  # FIX: a Param is not an ArrayLike to checkers: .value


def test_001_linear_eager_init() -> None:
    """Seed 001, "Flax NNX Module system": ``Linear`` with ``nnx.Param`` attributes and
    ``rngs.params()``, eagerly initialised with ``nnx.Rngs(params=0)`` and called."""
    linear = Linear001(2, 5, rngs=nnx.Rngs(params=0))  # Eager Init
    x = jnp.ones((1, 2))
    y = linear(x=x)  # FIX: `model(x=...)` -> `linear(x=...)`
    assert y.shape == (1, 5)
    assert all_close(y, x @ linear.w.value + linear.b.value)
    assert isinstance(linear.w, nnx.Param) and linear.w.value.shape == (2, 5)
    assert leaf_paths(nnx.state(linear, nnx.Param)) == {"w", "b"}
    # (nnx.display(linear) left out)


def test_001_stateful_counter() -> None:
    """Seed 001, "Stateful computation": ``class Count(nnx.Variable)`` and a ``Counter``
    whose ``__call__`` does ``self.count += 1``."""

    class Count(nnx.Variable[jax.Array]):
        pass

    class Counter(nnx.Module):
        def __init__(self) -> None:
            self.count = Count(jnp.array(0))

        def __call__(self) -> None:
            self.count += 1

    counter = Counter()
    cell = counter.count
    assert counter.count.value == 0
    counter()
    assert counter.count.value == 1
    assert counter.count is cell  # += wrote into the same cell
    counter()
    assert counter.count.value == 2
    # a user kind is its own collection and filter
    assert Count.collection == "count"
    assert nnx.state(counter, Count)["count"] == 2
    assert nnx.state(counter, "count")["count"] == 2


def test_001_model_surgery_lora() -> None:
    """Seed 001, "Model surgery": ``MLP`` of Linear/Dropout/BatchNorm/Linear, a
    ``LoraParam(nnx.Param)`` kind and ``LoraLinear`` wrapping an existing Linear;
    ``model.linear1``/``linear2`` replaced by LoRA versions, then ``model(x=...)``."""

    class MLP(nnx.Module):
        # the layers surgery replaces, declared with the type both versions share
        linear1: nnx.Module
        linear2: nnx.Module

        def __init__(self, fin: int, hidden: int, fout: int, rngs: nnx.Rngs) -> None:
            self.linear1 = Linear001(fin, hidden, rngs=rngs)
            self.dropout = nnx.Dropout(rate=0.1, rngs=rngs)
            self.bn = nnx.BatchNorm(hidden, rngs=rngs)  # FIX: nn.BatchNorm -> nnx.BatchNorm
            self.linear2 = Linear001(hidden, fout, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            linear1, linear2 = self.linear1, self.linear2
            assert isinstance(linear1, (Linear001, LoraLinear)) and isinstance(linear2, (Linear001, LoraLinear))
            x = nnx.gelu(self.dropout(self.bn(linear1(x))))
            return linear2(x)  # FIX: self.linear -> self.linear2

    # To store stateful contexts, use nnx.Variable if vector
    class LoraParam(nnx.Param[jax.Array]):
        pass

    # Custom Lora-layer
    class LoraLinear(nnx.Module):
        def __init__(self, linear: Linear001, rank: int, rngs: nnx.Rngs) -> None:
            self.linear = linear
            self.A = LoraParam(jax.random.normal(rngs(), (linear.din, rank)))
            self.B = LoraParam(jax.random.normal(rngs(), (rank, linear.dout)))

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.linear(x) + x @ self.A.value @ self.B.value

    rngs = nnx.Rngs(0)
    model = MLP(2, 32, 5, rngs=rngs)
    original1, original2 = model.linear1, model.linear2
    assert isinstance(original1, Linear001) and isinstance(original2, Linear001)
    paths_before = leaf_paths(nnx.state(model))
    assert {"linear1.w", "linear2.w", "bn.mean", "dropout.rngs.count"} <= paths_before

    # Model surgery.
    model.linear1 = LoraLinear(original1, 4, rngs=rngs)
    model.linear2 = LoraLinear(original2, 4, rngs=rngs)
    assert isinstance(model.linear1, LoraLinear) and isinstance(model.linear2, LoraLinear)

    x = jnp.ones((3, 2))
    y = model(x=x)
    assert y.shape == (3, 5)

    # the original layers are kept inside, the structure changed
    assert model.linear1.linear is original1 and model.linear2.linear is original2
    paths_after = leaf_paths(nnx.state(model))
    assert "linear1.w" not in paths_after
    assert {"linear1.linear.w", "linear1.A", "linear1.B", "linear2.linear.b"} <= paths_after
    # LoraParam is a Param subkind: nnx.Param selects it too, LoraParam only the adapters
    assert leaf_paths(nnx.state(model, LoraParam)) == {"linear1.A", "linear1.B", "linear2.A", "linear2.B"}
    assert leaf_paths(nnx.state(model, LoraParam)) < leaf_paths(nnx.state(model, nnx.Param))
    lora = model.linear1
    assert isinstance(lora, LoraLinear)
    assert all_close(lora(x), original1(x) + x @ lora.A.value @ lora.B.value)
    # the forward pass drew a dropout key and updated the batch stats
    dropout_rngs = model.dropout.rngs
    assert dropout_rngs is not None and int(dropout_rngs.count.value) == 1
    assert not all_close(model.bn.mean, 0.0)

    # split/merge keeps the surgery
    graphdef, state = nnx.split(model)
    copy = nnx.merge(graphdef, state)
    assert isinstance(copy.linear1, LoraLinear) and isinstance(copy.linear1.A, LoraParam)
    # (nnx.display, nnx.Optimizer and the nnx.jit train_step left out)


# == seed 002: quick reference =================================================


def test_002_state_management_and_functional_api() -> None:
    """Seed 002, "State Management" and "Functional API": static configuration as plain
    attributes (``self.dropout_rate = 0.5``), dynamic state in ``nnx.Param``/``nnx.Variable``
    read with ``.value`` and updated by assignment in a method; ``nnx.split`` ->
    (GraphDef, State), ``nnx.merge``, ``nnx.update`` (in place), used with plain ``jax.jit``."""

    class Layer(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs) -> None:
            self.dropout_rate = 0.5  # static configuration
            self.weight = nnx.Param(jax.random.normal(rngs.params(), (3, 2)))  # dynamic state
            self.steps = nnx.Variable(jnp.array(0))

        def __call__(self, x: jax.Array) -> jax.Array:
            self.steps.value = self.steps.value + 1  # update state inside a method
            return x @ self.weight.value

    layer = Layer(rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)
    assert isinstance(graphdef, nnx.GraphDef) and isinstance(state, nnx.State)
    assert leaf_paths(state) == {"weight", "steps"}  # dropout_rate is not state...
    layer.dropout_rate = 0.25
    assert nnx.graphdef(layer) != graphdef  # ...it is part of the GraphDef
    layer.dropout_rate = 0.5
    assert nnx.graphdef(layer) == graphdef

    # State is a pytree: jax.jit a pure function of it
    @jit
    def forward(state: nnx.State[Layer], x: jax.Array) -> tuple[jax.Array, nnx.State[Layer]]:
        m = nnx.merge(graphdef, state)
        y = m(x)
        return y, nnx.state(m)

    x = jnp.ones((4, 3))
    y, new_state = forward(state, x)
    assert all_close(y, x @ layer.weight.value)
    assert int(new_state["steps"]) == 1 and int(layer.steps.value) == 0  # the object is untouched...
    weight_cell = layer.weight
    nnx.update(layer, new_state)  # ...until it is updated in place
    assert int(layer.steps.value) == 1 and layer.weight is weight_cell

    # merge builds a new, independent module
    other = nnx.merge(graphdef, state)
    assert other is not layer and other.weight is not layer.weight
    assert all_close(other.weight.value, layer.weight.value) and other.dropout_rate == 0.5

    # explicit RNG: the same seed reproduces the same parameters
    assert all_close(Layer(rngs=nnx.Rngs(0)).weight.value, layer.weight.value)
    assert not all_close(Layer(rngs=nnx.Rngs(1)).weight.value, layer.weight.value)


def test_002_dropout_holds_forked_rngs() -> None:
    """Seed 002, "Key NNX Classes": "Layers that use RNGs (like Dropout) hold a forked copy
    of the Rngs object, not a shared reference": ``nnx.Dropout(0.5, rngs=rngs)``. As in Flax
    0.12 the copy is the one stream it draws from, an ``RngStream`` forked from the caller's."""
    rngs = nnx.Rngs(0)
    dropout = nnx.Dropout(0.5, rngs=rngs)
    own = dropout.rngs
    assert isinstance(own, nnx.RngStream)
    assert own is not rngs.default  # a new stream object with its own key
    count = int(rngs.default.count.value)  # forking drew one key from the caller's stream
    assert count == 1
    x = jnp.ones((64,))
    a, b = dropout(x), dropout(x)
    assert not all_close(a, b)  # every call draws a new key from the forked stream
    assert int(rngs.default.count.value) == count  # the caller's stream did not move
    # the forked stream is state of the layer, and advances as such
    assert {"rngs.key", "rngs.count"} == leaf_paths(nnx.state(dropout))
    assert int(own.count.value) == 2
    # the caller's later draws do not depend on how often the layer was used
    fresh = nnx.Rngs(0)
    nnx.Dropout(0.5, rngs=fresh)
    assert all_close(jax.random.key_data(rngs.params()), jax.random.key_data(fresh.params()))
    # two layers forked from one Rngs draw different masks
    other = nnx.Dropout(0.5, rngs=rngs)
    assert not all_close(other(x), nnx.Dropout(0.5, rngs=nnx.Rngs(0))(x))


# == seed 003: nnx 0.0.8 README ================================================


class Count003(nnx.Variable[jax.Array], collection="count"):
    # Seed 003's `class Count(nnx.Variable): pass` (renamed here; same collection name).
    pass


class Linear003(nnx.Module):
    # Seed 003, "Getting Started" (the seed calls it Linear).
    def __init__(self, din: int, dout: int, *, ctx: nnx.Context) -> None:
        key = ctx.make_rng("params")
        self.w = nnx.Param(jax.random.uniform(key, (din, dout)))
        self.b = nnx.Param(jnp.zeros((dout,)))
        self.count = Count003(jnp.array(0))  # track the number of calls  # FIX: an array, as Count003 declares

    def __call__(self, x: jax.Array) -> jax.Array:
        self.count += 1
        return x @ self.w.value + self.b.value


def test_003_getting_started() -> None:
    """Seed 003, "Getting Started": ``Linear`` with ``ctx.make_rng("params")``, a ``Count``
    variable incremented per call, ``Linear(din=12, dout=2, ctx=nnx.context(0))``,
    ``assert model.count == 1``."""
    model = Linear003(din=12, dout=2, ctx=nnx.context(0))

    # Forward pass and verify the call count
    x = jnp.ones((8, 12))
    y = model(x)
    assert model.count == 1
    assert y.shape == (8, 2)
    assert all_close(y, x @ model.w.value + model.b.value)
    # nnx.context(0) seeds the params stream: same seed, same weights
    assert all_close(Linear003(12, 2, ctx=nnx.context(0)).w.value, model.w.value)
    assert not all_close(Linear003(12, 2, ctx=nnx.context(1)).w.value, model.w.value)


def test_003_training_with_the_functional_api() -> None:
    """Seed 003, "Training with the Functional API": ``model.partition(nnx.Param, Count)``,
    a ``jax.jit`` train_step calling ``moduledef.apply(params, counts)(x)`` inside
    ``jax.grad(..., has_aux=True)`` and returning ``updates.filter(Count)``; SGD update;
    ``model = moduledef.merge(params, counts)``; ``assert model.count == 2``."""
    Count = Count003
    model = Linear003(din=12, dout=2, ctx=nnx.context(0))
    x = jnp.ones((8, 12))
    model(x)
    assert model.count == 1
    y = jnp.zeros((8, 2))  # FIX: the seed never defines the target y

    (params, counts), moduledef = model.partition(nnx.Param, Count)

    @jit
    def train_step(
        params: nnx.State[Linear003], counts: nnx.State[Linear003], x: jax.Array, y: jax.Array
    ) -> tuple[nnx.State[Linear003], nnx.State[Linear003]]:
        def loss_fn(params: nnx.State[Linear003]) -> tuple[jax.Array, nnx.State[Linear003]]:
            y_pred, (updates, _) = moduledef.apply(params, counts)(x)
            loss = jax.numpy.mean((y_pred - y) ** 2)
            return loss, updates.filter(Count)

        # compute gradient
        grads, counts = grad_with_aux(loss_fn)(params)
        # SGD update
        params = tree_map(sgd(0.1), params, grads)  # FIX: jax.tree_map -> jax.tree.map

        return params, counts

    def loss_of(p: nnx.State[Linear003]) -> float:
        return float(jnp.mean((x @ p["w"] + p["b"] - y) ** 2))

    old_params = params
    # execute the training step
    params, counts = train_step(params, counts, x, y)
    model = moduledef.merge(params, counts)
    assert model.count == 2
    assert isinstance(model, Linear003)
    assert not all_close(params["w"], old_params["w"])
    assert loss_of(params) < loss_of(old_params)
    # the returned states keep their kinds and fit the same moduledef again
    assert params.kind(("w",)) is nnx.Param and counts.kind(("count",)) is Count
    params, counts = train_step(params, counts, x, y)
    assert moduledef.merge(params, counts).count == 3


class Foo(nnx.Module):
    # Seed 003, "Modules".
    def __init__(self, ctx: nnx.Context) -> None:
        # node attributes
        self.variable = nnx.Param(jnp.array(1))
        self.np_buffer = np.array(2)
        self.jax_buffer = jnp.array(3)
        self.node = nnx.Node([4, 5])
        self.submodule = nnx.Linear(2, 4, ctx=ctx)

        # static attributes
        self.int = 1
        self.float = 2.0
        self.str = "hello"
        self.list = [1, 2, 3]


def test_003_modules_node_and_static_attributes() -> None:
    """Seed 003, "Modules" (``Foo``) and "Functional API" (``state, moduledef =
    model.partition()`` and the State it prints): node attributes (Param, NumPy and JAX
    arrays, ``nnx.Node``, a submodule) go to the State, the others are static."""
    model = Foo(ctx=nnx.context(0))  # FIX: Foo(din=12, dout=2, ctx=...): Foo takes only ctx

    state, moduledef = model.partition()
    # the State printed in the seed
    assert leaf_paths(state) == {
        "jax_buffer", "node", "np_buffer", "submodule.bias", "submodule.kernel", "variable",
    }
    assert state.kind(("variable",)) is nnx.Param
    assert state.kind(("node",)) is nnx.Node
    assert state.kind(("submodule", "kernel")) is nnx.Param
    assert state.kind(("jax_buffer",)) is None and state.kind(("np_buffer",)) is None  # plain arrays
    assert state["node"] == [4, 5]
    assert int(state["np_buffer"]) == 2 and int(state["jax_buffer"]) == 3

    # static attributes are in the ModuleDef: changing one changes it
    model.str = "bye"
    assert model.partition()[1] != moduledef
    model.str = "hello"
    assert model.partition()[1] == moduledef

    # model = moduledef.merge(state)
    model2 = moduledef.merge(state)
    assert isinstance(model2, Foo) and model2 is not model
    assert (model2.int, model2.float, model2.str, list(model2.list)) == (1, 2.0, "hello", [1, 2, 3])
    assert model2.node.value == [4, 5] and int(model2.variable.value) == 1
    assert all_close(model2.submodule.kernel, model.submodule.kernel)

    # State and ModuleDef are pytrees: they pass through JAX transforms
    def double_all(s: nnx.State[Foo]) -> nnx.State[Foo]:
        return tree_map(double, s)

    doubled = jit(double_all)(state)
    assert int(moduledef.merge(doubled).jax_buffer) == 6
    assert jax.tree.leaves(moduledef) == []


def test_003_functional_api_apply_method_and_submodule() -> None:
    """Seed 003, "Functional API": ``moduledef.apply(state)(x)`` runs ``__call__``,
    ``moduledef.apply(state).some_method(x)`` a method and ``moduledef.apply(state).submodule(x)``
    a submodule, each returning ``y, (state, moduledef)``."""

    class FooWithMethods(Foo):
        # Foo of the seed plus the __call__ and some_method the example calls
        layers: list[nnx.Linear]  # added by the example after construction
        def __call__(self, x: jax.Array) -> jax.Array:
            self.variable.value = self.variable.value + 1
            return self.submodule(x)

        def some_method(self, x: jax.Array) -> jax.Array:
            self.jax_buffer = self.jax_buffer * 10
            return -self.submodule(x)

    model = FooWithMethods(ctx=nnx.context(0))
    state, moduledef = model.partition()
    x = jnp.ones((3, 2))
    expected = x @ array(model.submodule.kernel) + array(model.submodule.bias)

    # run __call__
    y, (state, moduledef) = moduledef.apply(state)(x)
    assert all_close(y, expected)
    assert int(state["variable"]) == 2  # the update is in the returned state
    assert int(model.variable.value) == 1  # the module itself is untouched

    # run some_method
    y, (state, moduledef) = moduledef.apply(state).some_method(x)
    assert all_close(y, -expected)
    assert int(state["jax_buffer"]) == 30 and int(state["variable"]) == 2

    # run submodule
    y, (state2, moduledef2) = moduledef.apply(state).submodule(x)
    assert all_close(y, expected)
    assert state2 == state and moduledef2 == moduledef

    # "apply can call any nested method or submodule as long as it can be accessed via the
    # . or [] operators": [] reaches into a list of layers (an nnx.List, seed 003's Sequence)
    model.layers = [nnx.Linear(2, 2, ctx=nnx.context(1)), nnx.Linear(2, 3, ctx=nnx.context(2))]
    assert isinstance(model.layers, nnx.Sequence)
    state, moduledef = model.partition()
    y, (state3, _) = moduledef.apply(state).layers[1](x)
    assert all_close(y, model.layers[1](x)) and y.shape == (3, 3)
    assert state3 == state


class Net003(nnx.Module):
    # A module with params, batch stats and a plain buffer for the "Partitioning State" examples.
    def __init__(self, *, ctx: nnx.Context) -> None:
        self.linear = nnx.Linear(3, 2, ctx=ctx)
        self.bn = nnx.BatchNorm(2, ctx=ctx)
        self.shift = jnp.array(0.5)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.linear(x)) + self.shift


def test_003_partitioning_state() -> None:
    """Seed 003, "Partitioning State": ``model.partition()`` with no filter, ``nnx.Param``,
    ``nnx.Param, nnx.BatchStat`` and ``nnx.Param, nnx.BatchStat, ...`` (raising when a node is
    left unmatched), ``model.partition(...) == model.partition()``, predicate filters,
    ``moduledef.merge(params, batch_stats, rest)``, ``moduledef.apply(params, batch_stats,
    rest)(x)``, ``state.partition(...)`` and ``state.filter(...)``."""
    model = Net003(ctx=nnx.context(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))

    # partition the module into the state with all the nodes and the moduledef
    state, moduledef = model.partition()
    assert leaf_paths(state) == {
        "linear.kernel", "linear.bias", "bn.scale", "bn.bias", "bn.mean", "bn.var", "shift",
    }

    # verify that the state contains only params, else raise an error
    with pytest.raises(ValueError, match="unmatched"):
        model.partition(nnx.Param)
    linear_params, linear_def = model.linear.partition(nnx.Param)  # a params-only module passes
    assert leaf_paths(linear_params) == {"kernel", "bias"} and linear_def.type is nnx.Linear

    # split the state into params and batch_stats, verify no nodes are left
    with pytest.raises(ValueError, match="'shift'"):
        model.partition(nnx.Param, nnx.BatchStat)
    (bn_params, bn_stats), bn_def = model.bn.partition(nnx.Param, nnx.BatchStat)
    assert leaf_paths(bn_stats) == {"mean", "var"} and leaf_paths(bn_params) == {"scale", "bias"}
    assert bn_def.type is nnx.BatchNorm

    # if there are any nodes left, use the `...` filter to capture them
    (params, batch_stats, rest), moduledef = model.partition(nnx.Param, nnx.BatchStat, ...)
    assert leaf_paths(params) == {"linear.kernel", "linear.bias", "bn.scale", "bn.bias"}
    assert leaf_paths(batch_stats) == {"bn.mean", "bn.var"}
    assert leaf_paths(rest) == {"shift"}

    # using `...` as the only filter is equivalent to not passing any filters
    assert model.partition(...) == model.partition()  # FIX: the seed writes `=` for `==`

    # a predicate (path, value) -> bool
    (kernels, others), _ = model.partition(lambda path, value: path[-1] == "kernel", ...)
    assert leaf_paths(kernels) == {"linear.kernel"} and len(others.paths) == 6

    # reconstruct from substates
    model2 = moduledef.merge(params, batch_stats, rest)
    assert isinstance(model2, Net003) and model2 is not model
    assert model2.bn is not model.bn and nnx.cell(model2.bn, "mean") is not nnx.cell(model.bn, "mean")
    model.bn.use_running_average = model2.bn.use_running_average = True  # compare without stat updates
    assert all_close(model2(x), model(x))
    model.bn.use_running_average = False

    # the same is true for apply
    y, (state, moduledef_out) = moduledef.apply(params, batch_stats, rest)(x)
    assert y.shape == (5, 2)
    assert moduledef_out == moduledef
    # apply returns a single state; re-partition it with State's own partition
    params2, batch_stats2, rest2 = state.partition(nnx.Param, nnx.BatchStat, ...)
    assert params2 == params and rest2 == rest  # the forward pass changed no param...
    assert not all_close(batch_stats2["bn"]["mean"], batch_stats["bn"]["mean"])  # ...but the stats
    with pytest.raises(ValueError, match="unmatched"):
        state.partition(nnx.Param, nnx.BatchStat)

    # only get params
    params3 = state.filter(nnx.Param)
    assert params3 == params2
    # get params and batch_stats (no error although 'shift' matches neither)
    params4, batch_stats4 = state.filter(nnx.Param, nnx.BatchStat)
    assert params4 == params2 and batch_stats4 == batch_stats2


def test_003_filters_not_and_buffers() -> None:
    """Seed 003, "Filters": the four filter kinds (type, ``...``, predicate, tuple) and
    ``rest = module.filter(nnx.Not(nnx.Param))`` / ``buffers = module.filter(nnx.buffers)``."""
    module = Foo(ctx=nnx.context(0))

    rest = module.filter(nnx.Not(nnx.Param))
    buffers = module.filter(nnx.buffers)
    assert leaf_paths(rest) == {"np_buffer", "jax_buffer", "node"}
    assert leaf_paths(buffers) == {"np_buffer", "jax_buffer"}

    assert leaf_paths(module.filter(nnx.Param)) == {"variable", "submodule.kernel", "submodule.bias"}
    assert leaf_paths(module.filter(...)) == leaf_paths(module.filter(nnx.Param)) | leaf_paths(rest)
    assert leaf_paths(module.filter(lambda path, value: "submodule" in path)) == {
        "submodule.kernel", "submodule.bias",
    }
    assert leaf_paths(module.filter((nnx.Node, nnx.buffers))) == {"node", "np_buffer", "jax_buffer"}
    # several filters: one State each, a leaf going to the first filter that matches
    params, nodes = module.filter(nnx.Param, nnx.Node)
    assert leaf_paths(nodes) == {"node"} and "node" not in leaf_paths(params)


def test_003_capturing_intermediate_values() -> None:
    """Seed 003, "Capturing Intermediate Values": ``Linear`` storing ``self.y =
    nnx.Intermediate(y)`` in ``__call__``; ``model.pop_state(nnx.Intermediate)``; with the
    functional API, ``state.partition("intermediates", ...)`` and ``State.filter``."""

    class Linear(nnx.Module):
        def __init__(self, din: int, dout: int, *, ctx: nnx.Context) -> None:
            key = ctx.make_rng("params")
            self.w = nnx.Param(jax.random.uniform(key, (din, dout)))
            self.b = nnx.Param(jnp.zeros((dout,)))

        def __call__(self, x: jax.Array) -> jax.Array:
            y = x @ self.w.value + self.b.value
            self.y = nnx.Intermediate(y)
            return y

    model = Linear(12, 2, ctx=nnx.context(0))
    assert not hasattr(model, "y")  # not available upon initialization

    y = model(jnp.ones((8, 12)))
    intermediates = model.pop_state(nnx.Intermediate)
    assert leaf_paths(intermediates) == {"y"}
    assert intermediates.kind(("y",)) is nnx.Intermediate
    assert all_close(intermediates["y"], y)
    assert not hasattr(model, "y")  # removed from the module's attributes
    assert leaf_paths(model.filter(...)) == {"w", "b"}

    # with the functional API the intermediates are in the output state
    state, moduledef = model.partition()
    y, (state, moduledef_out) = moduledef.apply(state)(jnp.ones((8, 12)))
    # Alternatively, State.filter retrieves them without removing them
    assert leaf_paths(state.filter(nnx.Intermediate)) == {"y"}
    assert leaf_paths(state) == {"w", "b", "y"}
    # "pop" the intermediates from the state
    intermediates, state = state.partition("intermediates", ...)
    assert all_close(intermediates["y"], y)
    assert leaf_paths(state) == {"w", "b"}
    # what is left fits the original moduledef again
    model2 = moduledef.merge(state)
    assert not hasattr(model2, "y")
    assert moduledef_out != moduledef  # the output moduledef has the extra attribute


def test_003_manual_lifting_scan_mlp() -> None:
    """Seed 003, "Manual Lifting": ``Block`` (``nnx.Linear`` + ``nnx.Dropout`` + gelu) and
    ``ScanMLP`` that builds stacked layers with
    ``jax.vmap(lambda key: Block(dim, ctx=nnx.context(params=key)).partition())(params_key).merge()``
    and runs them with ``jax.lax.scan`` + ``moduledef.merge`` + ``self.layers.update_state``;
    then ``ScanMLP(10, n_layers=5, ctx=nnx.context(0))(x, train=True, ctx=nnx.context(dropout=1))``."""

    class Block(nnx.Module):
        def __init__(self, dim: int, *, ctx: nnx.Context) -> None:
            self.linear = nnx.Linear(dim, dim, ctx=ctx)
            self.dropout = nnx.Dropout(0.5)

        def __call__(self, x: jax.Array, *, train: bool, ctx: nnx.Context) -> jax.Array:
            x = self.linear(x)
            x = self.dropout(x, deterministic=not train, ctx=ctx)
            x = jax.nn.gelu(x)
            return x

    class ScanMLP(nnx.Module):
        def __init__(self, dim: int, *, n_layers: int, ctx: nnx.Context) -> None:
            params_key = jax.random.split(ctx.make_rng("params"), n_layers)
            self.n_layers = n_layers
            self.layers = jax.vmap(
                lambda key: Block(dim, ctx=nnx.context(params=key)).partition()  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]  # jax.vmap: an untyped lambda
            )(params_key).merge()

        def __call__(self, x: jax.Array, *, train: bool, ctx: nnx.Context) -> jax.Array:
            dropout_key = jax.random.split(ctx.make_rng("dropout"), self.n_layers)
            params, moduledef = self.layers.partition(nnx.Param)

            def scan_fn(x: jax.Array, inputs: tuple[nnx.State[Block], jax.Array]) -> tuple[jax.Array, nnx.State[Block]]:  # FIX: `def scan_fn(x: inputs)` -> two arguments
                params, dropout_key = inputs
                module = moduledef.merge(params)
                x = module(x, train=train, ctx=nnx.context(dropout=dropout_key))
                return x, module.filter(nnx.Param)

            x, params = jax.lax.scan(scan_fn, x, (params, dropout_key))
            self.layers.update_state(params)
            return x

    model = ScanMLP(10, n_layers=5, ctx=nnx.context(0))
    x = jnp.ones((3, 10))
    y = model(x, train=True, ctx=nnx.context(dropout=1))
    assert y.shape == (3, 10)

    # one Block whose parameters have a leading layer axis, different per layer
    assert isinstance(model.layers, Block)
    assert isinstance(model.layers.linear, nnx.Linear) and isinstance(model.layers.dropout, nnx.Dropout)
    kernel, bias = array(model.layers.linear.kernel), array(model.layers.linear.bias)
    assert kernel.shape == (5, 10, 10) and bias.shape == (5, 10)
    assert not all_close(kernel[0], kernel[1])
    # each layer's kernel is what nnx.Linear draws from its own key
    keys = jax.random.split(nnx.context(0).make_rng("params"), 5)
    assert all_close(kernel[3], array(nnx.Linear(10, 10, ctx=nnx.context(params=keys[3])).kernel))
    # update_state wrote the (unchanged) params back
    assert all_close(model.layers.linear.kernel, kernel)

    # train=False: the scan is the plain layer-by-layer loop
    h = x
    for i in range(5):
        h = jax.nn.gelu(h @ kernel[i] + bias[i])
    assert all_close(model(x, train=False, ctx=nnx.context(dropout=1)), h)

    # train=True: dropout is active (gelu(0) == 0 keeps the last layer's dropped units at 0)
    # and a different dropout seed gives a different mask
    zeros = float(jnp.mean(y == 0.0))
    assert 0.0 < zeros < 1.0
    assert not all_close(y, model(x, train=True, ctx=nnx.context(dropout=2)))
    assert all_close(y, model(x, train=True, ctx=nnx.context(dropout=1)))


def test_003_shared_state_with_context_flags() -> None:
    """Seed 003, "Case Studies / Shared State": ``Block(linear, ctx=ctx)`` with an
    ``nnx.BatchNorm(2, ctx=ctx)`` called as ``self.bn(x, ctx=ctx)``, ``Model`` whose two
    Blocks share one ``nnx.Linear(2, 2, ctx=ctx)``, and ``loss_fn`` passing
    ``nnx.context(flags=dict(use_running_average=True))``; the shared Linear stays in sync
    through a gradient update."""

    class Block(nnx.Module):
        def __init__(self, linear: nnx.Linear, *, ctx: nnx.Context) -> None:
            self.linear = linear
            self.bn = nnx.BatchNorm(2, ctx=ctx)

        def __call__(self, x: jax.Array, *, ctx: nnx.Context) -> jax.Array:
            x = self.linear(x)
            x = self.bn(x, ctx=ctx)
            x = nnx.relu(x)
            return x

    class Model(nnx.Module):
        def __init__(self, *, ctx: nnx.Context) -> None:
            shared = nnx.Linear(2, 2, ctx=ctx)
            self.block1 = Block(shared, ctx=ctx)
            self.block2 = Block(shared, ctx=ctx)

        def __call__(self, x: jax.Array, *, ctx: nnx.Context) -> jax.Array:
            x = self.block1(x, ctx=ctx)
            x = self.block2(x, ctx=ctx)
            return x

    def loss_fn(model: Model, x: jax.Array, y: jax.Array) -> jax.Array:
        ctx = nnx.context(flags=dict(use_running_average=True))
        y_pred = model(x, ctx=ctx)
        return jnp.mean((y - y_pred) ** 2)

    model = Model(ctx=nnx.context(0))
    assert model.block1.linear is model.block2.linear
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    y = jax.random.normal(jax.random.PRNGKey(2), (16, 2))

    # the flag reaches every BatchNorm through ctx; without it, the attribute decides
    stats = nnx.state(model, nnx.BatchStat)
    loss0 = loss_fn(model, x, y)
    assert nnx.state(model, nnx.BatchStat) == stats  # running averages used, not updated
    model.eval()
    model(x, ctx=nnx.context(flags=dict(use_running_average=False)))  # the call's flag wins
    assert nnx.state(model, nnx.BatchStat) != stats
    stats = nnx.state(model, nnx.BatchStat)
    model(x, ctx=nnx.context(flags={}))  # no flag: model.eval() holds
    assert nnx.state(model, nnx.BatchStat) == stats
    model.train()

    # one copy of the shared Linear in the state and in the gradient
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    assert {"block1.linear.kernel", "block1.linear.bias"} <= leaf_paths(params)
    assert not any(p.startswith("block2.linear") for p in leaf_paths(params))

    def pure_loss(params: nnx.State[Model]) -> jax.Array:
        return loss_fn(nnx.merge(graphdef, params, rest), x, y)

    loss0, grads = value_and_grad(pure_loss)(params)
    assert leaf_paths(grads) == leaf_paths(params)
    new_params = tree_map(sgd(0.05), params, grads)
    shared = model.block1.linear
    kernel_before = array(shared.kernel)
    nnx.update(model, new_params)
    assert model.block1.linear is model.block2.linear is shared
    assert not all_close(shared.kernel, kernel_before)
    assert loss_fn(model, x, y) < loss0


# == seed 004: tiny NNX, its ScanMLP written against nnx's API =================


class Linear004(nnx.Module):
    # Seed 004's Linear: Variable("params", ...) -> nnx.Param, Context -> nnx.Context.
    def __init__(self, din: int, dout: int, *, ctx: nnx.Context) -> None:
        self.din = din
        self.dout = dout
        key = ctx.make_rng()
        self.w = nnx.Param(random.uniform(key, (din, dout)))
        self.b = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w.value + self.b.value


class BatchNorm004(nnx.Module):
    # Seed 004's BatchNorm: Variable("batch_stats", ...) -> nnx.BatchStat.
    def __init__(self, din: int, mu: float = 0.95) -> None:
        self.mu = mu
        self.scale = nnx.Param(jax.numpy.ones((din,)))
        self.bias = nnx.Param(jax.numpy.zeros((din,)))
        self.mean = nnx.BatchStat(jax.numpy.zeros((din,)))
        self.var = nnx.BatchStat(jax.numpy.ones((din,)))

    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if train:
            axis = tuple(range(x.ndim - 1))
            # FIX: the seed uses keepdims=True, which silently turns the running stats from
            # (din,) into (1, din) (its printed output shows (4, 1, 10)); nnx.update refuses
            # to change a cell's shape, so the statistics keep their declared (din,) shape.
            mean = jax.numpy.mean(x, axis=axis)
            var = jax.numpy.var(x, axis=axis)
            # ema update
            self.mean.value = self.mu * self.mean.value + (1 - self.mu) * mean
            self.var.value = self.mu * self.var.value + (1 - self.mu) * var
        else:
            mean, var = self.mean.value, self.var.value

        scale, bias = self.scale.value, self.bias.value
        x = (x - mean) / jax.numpy.sqrt(var + 1e-5) * scale + bias
        return x


class Dropout004(nnx.Module):
    # Seed 004's Dropout.
    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, x: jax.Array, *, train: bool, ctx: nnx.Context) -> jax.Array:
        if train:
            mask = random.bernoulli(ctx.make_rng(), (1 - self.rate), x.shape)
            x = x * mask / (1 - self.rate)
        return x


class Block004(nnx.Module):
    def __init__(self, din: int, dout: int, *, ctx: nnx.Context) -> None:
        self.linear = Linear004(din, dout, ctx=ctx)
        self.bn = BatchNorm004(dout)
        self.dropout = Dropout004(0.1)

    def __call__(self, x: jax.Array, *, train: bool, ctx: nnx.Context) -> jax.Array:
        x = self.linear(x)
        x = self.bn(x, train=train)
        x = jax.nn.gelu(x)
        x = self.dropout(x, train=train, ctx=ctx)
        return x


class ScanMLP004(nnx.Module):
    def __init__(self, hidden_size: int, n_layers: int, *, ctx: nnx.Context) -> None:
        self.n_layers = n_layers

        # lift init
        key = random.split(ctx.make_rng(), n_layers - 1)
        moduledefs: list[nnx.ModuleDef[Block004]] = []  # FIX: a list, not `nonlocal moduledef` (typed)

        def init_fn(key: jax.Array) -> nnx.State[Block004]:
            state, moduledef = Block004(hidden_size, hidden_size, ctx=nnx.context(key)).partition()
            moduledefs.append(moduledef)
            return state

        state = vmap(init_fn)(key)
        self.layers = moduledefs[-1].merge(state)
        self.linear = Linear004(hidden_size, hidden_size, ctx=ctx)

    def __call__(self, x: jax.Array, *, train: bool, ctx: nnx.Context) -> jax.Array:
        # lift call
        key: jax.Array = random.split(ctx.make_rng(), self.n_layers - 1)
        state, moduledef = self.layers.partition()

        def scan_fn(x: jax.Array, inputs: tuple[jax.Array, nnx.State[Any]]) -> tuple[jax.Array, nnx.State[Any]]:
            key, state = inputs
            x, (state, _) = moduledef.apply(state)(x, train=train, ctx=nnx.context(key))
            return x, state

        x, state = scan(scan_fn, x, (key, state))
        self.layers.update_state(state)
        x = self.linear(x)
        return x


def test_004_scan_mlp() -> None:
    """Seed 004, "Scan Over Layers Example" (In [None] and In [87]): the tiny-NNX ``Block``
    and ``ScanMLP`` (lift init with ``jax.vmap`` over ``partition()``, lift call with
    ``jax.lax.scan`` over ``moduledef.apply(state)``, then ``update_state``) written
    against nnx (``Variable(collection, v)`` -> ``nnx.Param``/``nnx.BatchStat``,
    ``Context(key)`` -> ``nnx.context(key)``), and the state shapes it prints."""
    module = ScanMLP004(hidden_size=10, n_layers=5, ctx=nnx.context(random.PRNGKey(0)))
    layers_before = module.layers.filter(nnx.Param)
    x = jax.random.normal(random.PRNGKey(0), (2, 10))
    y = module(x, train=True, ctx=nnx.context(random.PRNGKey(1)))
    assert y.shape == (2, 10)

    state, moduledef = module.partition()
    shapes = jax.tree.map(jnp.shape, state)  # FIX: jax.tree_map -> jax.tree.map
    assert shapes.to_dict() == {
        "layers": {
            "bn": {"bias": (4, 10), "mean": (4, 10), "scale": (4, 10), "var": (4, 10)},  # seed: mean/var (4, 1, 10), see BatchNorm004
            "linear": {"b": (4, 10), "w": (4, 10, 10)},
        },
        "linear": {"b": (10,), "w": (10, 10)},
    }
    assert isinstance(moduledef, nnx.ModuleDef) and moduledef.type is ScanMLP004

    # train=True updated each layer's running stats; the parameters are unchanged
    assert module.layers.filter(nnx.Param) == layers_before
    mean = module.layers.bn.mean.value
    assert not all_close(mean, 0.0) and not all_close(mean[0], mean[1])

    # train=False is the plain loop over the stacked layers (running stats, no dropout)
    p = state.to_dict()
    h = x
    for i in range(4):
        lin, bn = p["layers"]["linear"], p["layers"]["bn"]
        h = h @ lin["w"][i] + lin["b"][i]
        h = (h - bn["mean"][i]) / jnp.sqrt(bn["var"][i] + 1e-5) * bn["scale"][i] + bn["bias"][i]
        h = jax.nn.gelu(h)
    h = h @ p["linear"]["w"] + p["linear"]["b"]
    assert all_close(module(x, train=False, ctx=nnx.context(random.PRNGKey(1))), h)
    assert module.filter(nnx.BatchStat) == state.filter(nnx.BatchStat)  # eval: no stats update

    # train=True twice with the same key and the same stats gives the same output
    copy = moduledef.merge(state)
    assert all_close(copy(x, train=True, ctx=nnx.context(random.PRNGKey(1))),
                     moduledef.merge(state)(x, train=True, ctx=nnx.context(random.PRNGKey(1))))


def test_004_filtering_state() -> None:
    """Seed 004, "Filtering State" (In [89]): ``state.filter("params")``,
    ``state.filter("batch_stats")`` and merging them back into one State."""
    module = ScanMLP004(hidden_size=10, n_layers=5, ctx=nnx.context(random.PRNGKey(0)))
    module(jax.random.normal(random.PRNGKey(0), (2, 10)), train=True, ctx=nnx.context(random.PRNGKey(1)))
    state, moduledef = module.partition()

    # split
    params = state.filter("params")
    batch_stats = state.filter("batch_stats")
    # merge
    # FIX: the seed's State is a flat {"a/b/c": var} dict, so {**params, **batch_stats} merges
    # them; nnx's State is nested (both have a top-level "layers"), so unpack the flat views.
    merged = nnx.State.from_flat_state({**params.flat_state(), **batch_stats.flat_state()})
    assert merged == state
    assert nnx.State.merge(params, batch_stats) == state

    assert jax.tree.map(jnp.shape, params).to_dict() == {
        "layers": {"bn": {"bias": (4, 10), "scale": (4, 10)}, "linear": {"b": (4, 10), "w": (4, 10, 10)}},
        "linear": {"b": (10,), "w": (10, 10)},
    }
    assert jax.tree.map(jnp.shape, batch_stats).to_dict() == {
        "layers": {"bn": {"mean": (4, 10), "var": (4, 10)}},  # seed: (4, 1, 10), see BatchNorm004
    }
    # the merged state rebuilds the module
    rebuilt = moduledef.merge(merged)
    assert all_close(rebuilt.layers.bn.mean.value, module.layers.bn.mean.value)
