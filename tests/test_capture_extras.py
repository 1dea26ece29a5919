"""nnx.capture's extras (Flax 0.12): gradients of intermediate values through module.perturb
and capture(init=), every method's output through capture(method_outputs=), the decorator
form, and capture leaving the module as it found it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Scale(nnx.Module):
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.perturb("grad_of_x", x)
        y = self.factor * x
        self.sow(nnx.Intermediate, "y", y)
        return y


class Chain(nnx.Module):
    def __init__(self) -> None:
        self.layers = [Scale(2.0), Scale(3.0)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = layer(x)
        return x


def test_perturbations_give_the_gradient_with_respect_to_intermediate_values() -> None:
    model = Chain()
    x = jnp.array(1.0)
    _, perturbations = nnx.capture(model, nnx.Perturbation)(x)
    assert vars(model.layers[0]).keys() == {"factor"}  # captured cells are popped
    assert perturbations.kind(("layers", 0, "grad_of_x")) is nnx.Perturbation

    def loss(model: Chain, perturbations: nnx.State[Any], x: jax.Array) -> tuple[jax.Array, nnx.State[Any]]:
        out, intermediates = nnx.capture(model, nnx.Intermediate, init=perturbations)(x)
        return out, intermediates

    @nnx.jit
    def step(model: Chain, perturbations: nnx.State[Any], x: jax.Array) -> nnx.State[Any]:
        (_, x_grads), sowed = nnx.grad(loss, argnums=(0, 1), has_aux=True)(model, perturbations, x)
        merged: nnx.State[Any] = nnx.merge_state(x_grads, sowed)
        return merged

    found = step(model, perturbations, x)
    # d(out)/d(input of layer 0) = 2 * 3, d(out)/d(input of layer 1) = 3
    np.testing.assert_allclose(found["layers"][0]["grad_of_x"], 6.0)
    np.testing.assert_allclose(found["layers"][1]["grad_of_x"], 3.0)
    np.testing.assert_allclose(found["layers"][1]["y"][0], 6.0)
    assert vars(model.layers[1]).keys() == {"factor"}  # neither planted nor sowed cells stay


def test_perturb_refuses_an_attribute_of_another_kind() -> None:
    model = Scale(2.0)
    model.grad_of_x = nnx.Param(jnp.zeros(()))  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(ValueError, match="expected attribute 'grad_of_x' to be of type Perturbation, got Param"):
        model(jnp.ones(()))


def test_method_outputs_records_every_public_method_under_its_name() -> None:
    class Inner(nnx.Module):
        def __init__(self) -> None:
            self.w = nnx.Param(jnp.ones((2, 2)))

        def __call__(self, x: jax.Array) -> jax.Array:
            return x @ self.w[...]

        def squash(self, x: jax.Array) -> jax.Array:
            return jnp.tanh(x)

    class Outer(nnx.Module):
        def __init__(self) -> None:
            self.a = Inner()
            self.b = Inner()

        def __call__(self, x: jax.Array) -> jax.Array:
            self.sow(nnx.Intermediate, "input", x)
            return self.b.squash(self.b.squash(self.a(x)))

    model, other = Outer(), Inner()
    y, found = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(jnp.ones((1, 2)))
    np.testing.assert_allclose(found["__call__"][0], y)
    assert len(found["b"]["squash"]) == 2 and found["a"]["__call__"][0].shape == (1, 2)
    assert "input" in found
    assert Inner.__call__.__name__ == "__call__" and not hasattr(Inner.squash, "_nnx_records")  # restored
    np.testing.assert_allclose(other(jnp.ones((1, 2))), 2.0)  # other instances are untouched


def test_the_decorator_form_takes_the_kinds_first() -> None:
    model = Scale(2.0)
    y, found = nnx.capture(nnx.Intermediate)(model)(jnp.array(1.0))
    np.testing.assert_allclose(found["y"][0], y)


def test_capture_drops_cells_it_was_not_asked_for_but_keeps_earlier_ones() -> None:
    model = Scale(2.0)
    model.sow(nnx.Intermediate, "earlier", 1)
    _, perturbations = nnx.capture(model, nnx.Perturbation)(jnp.array(1.0))
    assert list(perturbations.keys()) == ["grad_of_x"]
    assert sorted(vars(model)) == ["earlier", "factor"]  # "y" was sowed during the call: dropped
