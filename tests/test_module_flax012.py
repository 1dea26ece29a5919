"""Module functions as Flax 0.12 calls them: view/view_info(graph=), iter_children,
clone(arrays=True), the errors of sow and set_attributes, and nnx.grad of a module
without state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 3, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, deterministic=False, rngs=rngs)
        self.heads = [nnx.Linear(3, 1, rngs=rngs)]


@pytest.mark.parametrize("graph", [True, False])
def test_view_and_view_info_take_the_graph_mode(graph: bool) -> None:
    block = Block(nnx.Rngs(0))
    evaluated = nnx.view(block, deterministic=True, graph=graph)
    assert evaluated.dropout.deterministic and not block.dropout.deterministic
    assert "Dropout:" in nnx.view_info(block, graph=graph)


def test_view_in_tree_mode_refuses_shared_modules() -> None:
    block = Block(nnx.Rngs(0))
    block.again = block.linear  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(ValueError, match="nnx.view"):
        nnx.view(block, deterministic=True, graph=False)


def test_iter_children_yields_the_immediate_objects() -> None:
    block = Block(nnx.Rngs(0))
    # only Objects: the nnx.List of heads and the cells are not children here
    assert [key for key, _ in nnx.iter_children(block)] == ["dropout", "linear"]
    assert [key for key, _ in nnx.iter_module_children(block)] == ["dropout", "linear"]
    assert list(nnx.iter_children(block.linear)) == []
    with pytest.raises(TypeError, match="takes a Module .* got int"):
        list(nnx.iter_module_children(3))


def test_clone_with_arrays_copies_the_buffers() -> None:
    model = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    shared, distinct = nnx.clone(model), nnx.clone(model, arrays=True)
    assert shared.kernel[...] is model.kernel[...]
    assert distinct.kernel[...] is not model.kernel[...]
    np.testing.assert_array_equal(distinct.kernel[...], model.kernel[...])


def test_sow_errors_name_the_attribute_and_what_it_holds() -> None:
    class Foo(nnx.Module):
        def __init__(self) -> None:
            self.count = 10
            self.w = nnx.Param(jnp.ones(()))

    foo = Foo()
    with pytest.raises(ValueError, match="Foo.sow: expected attribute 'count' to be a Variable, got int"):
        foo.sow(nnx.Intermediate, "count", 1)
    with pytest.raises(ValueError, match="Foo.sow: expected attribute 'w' to be of type Intermediate, but it holds a Param"):
        foo.sow(nnx.Intermediate, "w", 1)
    assert foo.count == 10


def test_set_attributes_names_what_it_could_not_find() -> None:
    block = Block(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Could not find at least one instance of the following attributes: \['unknown'\]"):
        block.set_attributes(deterministic=True, unknown=True)
    block.set_attributes(deterministic=True, unknown=True, raise_if_not_found=False)
    assert block.dropout.deterministic


def test_grad_of_a_module_without_state_is_empty() -> None:
    class Triple(nnx.Module):
        def __call__(self, x: jax.Array) -> jax.Array:
            return 3 * x

    def loss(model: Triple, x: jax.Array) -> jax.Array:
        return model(x)

    model_grads, x_grad = nnx.grad(loss, argnums=(0, 1))(Triple(), jnp.array(2.0))
    assert len(model_grads) == 0
    np.testing.assert_allclose(x_grad, 3.0)
