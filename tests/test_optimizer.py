"""nnx.Optimizer: optax state in cells, in-place updates eagerly and under jax.jit, wrt subsets."""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
import pytest
from parity import assert_close
from typed_jax import jit, value_and_grad

import nnx


class LoRAish(nnx.Param[jax.Array]):
    """A Param subkind, to train a subset (as LoRAParam does)."""


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.first = nnx.Linear(3, 8, use_bias=False, rngs=rngs)  # a bias before BatchNorm has no gradient
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.second = nnx.Linear(8, 2, rngs=rngs)
        self.adapter = LoRAish(jnp.zeros((8,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.second(jax.nn.relu(self.bn(self.first(x))) + self.adapter.value)


X = jax.random.normal(jax.random.key(0), (16, 3))
Y = jax.random.normal(jax.random.key(1), (16, 2))


def grads_of(model: MLP, wrt: nnx.Filter = nnx.Param) -> nnx.State[MLP]:
    graphdef, params, rest = nnx.split(model, wrt, ...)

    def loss(params: nnx.State[MLP]) -> jax.Array:
        return jnp.mean((nnx.merge(graphdef, params, rest)(X) - Y) ** 2)

    return value_and_grad(loss)(params)[1]


def test_state_lives_in_cells_that_split_finds() -> None:
    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    assert int(optimizer.step.value) == 0 and isinstance(optimizer.step, nnx.OptState)
    opt_paths = nnx.state(optimizer, nnx.OptState).paths
    assert ("step",) in opt_paths
    assert ("opt_state", 0, "mu", "first.kernel") in opt_paths
    assert ("opt_state", 0, "nu", "adapter") in opt_paths
    # the model is shared, not copied: its params appear once, under optimizer.model
    assert ("model", "first", "kernel") in nnx.state(optimizer, nnx.Param).paths
    assert optimizer.model is model


def test_update_matches_plain_optax() -> None:
    model = MLP(nnx.Rngs(0))
    tx = optax.adam(1e-2)
    optimizer = nnx.Optimizer(model, tx)
    params = nnx.state(model, nnx.Param)
    opt_state = tx.init(params)
    for _ in range(3):
        grads = grads_of(model)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = cast(nnx.State[MLP], optax.apply_updates(params, updates))  # optax: its own Params type
        optimizer.update(model, grads)
    assert int(optimizer.step.value) == 3
    for ours, expected in zip(nnx.state(model, nnx.Param).leaves, params.leaves):
        assert_close(ours, expected, atol=1e-6)


def test_old_form_updates_optimizer_model() -> None:
    a, b = MLP(nnx.Rngs(0)), MLP(nnx.Rngs(0))
    opt_a, opt_b = nnx.Optimizer(a, optax.sgd(0.1)), nnx.Optimizer(b, optax.sgd(0.1))
    opt_a.update(a, grads_of(a))
    opt_b.update(grads_of(b))
    assert nnx.state(a, nnx.Param) == nnx.state(b, nnx.Param)
    assert int(opt_b.step.value) == 1


def test_wrt_subset_trains_only_that_kind() -> None:
    model = MLP(nnx.Rngs(0))
    base = nnx.state(model, nnx.Not(LoRAish))
    optimizer = nnx.Optimizer(model, optax.sgd(0.5), wrt=LoRAish)
    assert {p[-1] for p in nnx.state(optimizer, nnx.OptState).paths} == {"step"}  # sgd keeps no arrays
    optimizer.update(model, grads_of(model))  # grads of every Param: filtered down to wrt
    assert nnx.state(model, nnx.Not(LoRAish)) == base
    assert not jnp.allclose(model.adapter.value, 0.0)


def test_jit_through_split_merge_equals_eager() -> None:
    eager_model, jit_model = MLP(nnx.Rngs(0)), MLP(nnx.Rngs(0))
    eager_opt = nnx.Optimizer(eager_model, optax.adamw(1e-2))
    jit_opt = nnx.Optimizer(jit_model, optax.adamw(1e-2))
    graphdef, whole = nnx.split(jit_opt)  # one graph: the optimizer and the model it holds
    state: nnx.State[Any] = whole  # the step below returns the generic State

    @jit
    def train_step(state: nnx.State[Any]) -> tuple[jax.Array, nnx.State[Any]]:
        optimizer = nnx.merge(graphdef, state)
        model = optimizer.model
        assert isinstance(model, MLP)  # Optimizer.model is typed as an nnx.Object

        def loss_fn(params: nnx.State[MLP]) -> jax.Array:
            return jnp.mean((nnx.merge(g, params, rest)(X) - Y) ** 2)

        g, params, rest = nnx.split(model, nnx.Param, ...)
        loss, grads = value_and_grad(loss_fn)(params)
        optimizer.update(model, grads)
        model(X)  # a forward pass in training mode moves the BatchNorm statistics in place
        return loss, nnx.state(optimizer)

    losses: list[float] = []
    for _ in range(5):
        loss, state = train_step(state)
        losses.append(float(loss))
        eager_opt.update(eager_model, grads_of(eager_model))
        eager_model(X)
    nnx.update(jit_opt, state)
    assert losses[-1] < losses[0]
    assert int(jit_opt.step.value) == 5
    for ours, expected in zip(nnx.state(jit_model).leaves, nnx.state(eager_model).leaves):
        assert_close(ours, expected, atol=1e-5)


def test_chained_transformations_with_empty_states() -> None:
    model = MLP(nnx.Rngs(0))
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), optax.scale(-1e-2))
    optimizer = nnx.Optimizer(model, tx)
    before = np.asarray(model.first.kernel)
    optimizer.update(model, grads_of(model))
    assert not np.allclose(before, model.first.kernel)


def test_bad_arguments_name_the_problem_and_change_nothing() -> None:
    model = MLP(nnx.Rngs(0))
    with pytest.raises(ValueError, match="selects no state of MLP"):
        nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Cache)  # type: ignore[nnx-wrt]  # the plugin sees it too
    optimizer = nnx.Optimizer(model, optax.sgd(0.1))
    with pytest.raises(TypeError, match=r"takes \(model, grads\) or \(grads\).*got \(MLP\)"):
        optimizer.update(model)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]  # under test
    partial = grads_of(model, LoRAish)
    with pytest.raises(ValueError, match=r"do not cover.*first\.kernel"):
        optimizer.update(model, partial)
    assert int(optimizer.step.value) == 0


def test_under_nnx_jit_both_update_forms_write_back_and_match_eager() -> None:
    model = MLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2))

    @nnx.jit
    def modern(model: MLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(model: MLP) -> jax.Array:
            return jnp.mean((model(x) - y) ** 2)

        loss: jax.Array
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def seed_001(optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(model: MLP) -> jax.Array:
            return jnp.mean((model(x) - y) ** 2)

        model = optimizer.model
        assert isinstance(model, MLP)  # Optimizer.model is typed as an nnx.Object
        loss: jax.Array
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(grads)  # the optimizer's own reference to the model
        return loss

    losses = [float(modern(model, optimizer, X, Y)) for _ in range(3)]
    losses += [float(seed_001(optimizer, X, Y)) for _ in range(3)]
    assert losses[-1] < losses[0]
    assert int(optimizer.step.value) == 6
    # The same six steps eagerly: the loss's BatchNorm pass lands on the model, then the update.
    eager_model = MLP(nnx.Rngs(0))
    eager_opt = nnx.Optimizer(eager_model, optax.adam(1e-2))
    for _ in range(6):
        grads = grads_of(eager_model)
        eager_model(X)
        eager_opt.update(eager_model, grads)
    for ours, expected in zip(nnx.state(model).leaves, nnx.state(eager_model).leaves):
        assert_close(ours, expected, atol=1e-5)
