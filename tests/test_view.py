"""``nnx.view``/``view_info``, attribute access on ``nnx.Dict``, ``None`` as a filter, ``nnx.graphlib``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import pytest
from parity import assert_close

import nnx


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(3, 6, rngs=rngs)
        self.bn = nnx.BatchNorm(6, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.dropout(self.bn(self.linear(x)))


def test_view_is_a_copy_in_another_mode_that_shares_the_cells() -> None:
    block = Block(nnx.Rngs(0))
    evaluation = nnx.view(block, deterministic=True, use_running_average=True)
    assert evaluation.dropout.deterministic and evaluation.bn.use_running_average
    assert not block.dropout.deterministic and not block.bn.use_running_average  # the original is unchanged
    assert evaluation.linear.kernel is block.linear.kernel  # the trained weights, not a copy
    x = jax.random.normal(jax.random.key(1), (4, 3))
    # In evaluation mode the output is the affine map normalised by the running statistics (0, 1).
    expected = block.linear(x) / jnp.sqrt(1.0 + block.bn.epsilon)
    assert_close(evaluation(x), expected, atol=1e-5)
    assert_close(evaluation(x), evaluation(x))  # deterministic: no dropout mask


def test_view_only_reaches_the_chosen_modules() -> None:
    block = Block(nnx.Rngs(0))
    view = nnx.view(block, only=nnx.Dropout, deterministic=True)
    assert view.dropout.deterministic and not view.bn.use_running_average


def test_view_rejects_an_option_no_module_declares() -> None:
    block = Block(nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"Unused keys found in nnx.view: \['unknown'\]"):
        nnx.view(block, deterministic=True, unknown=True)
    quiet = nnx.view(block, deterministic=True, unknown=True, raise_if_not_found=False)
    assert quiet.dropout.deterministic


def test_view_calls_a_user_set_view_with_the_options_it_declares() -> None:
    seen: list[dict[str, Any]] = []

    class Gate(nnx.Module):
        def __init__(self) -> None:
            self.open = False

        def set_view(self, open: bool | None = None) -> None:
            seen.append({"open": open})
            if open is not None:
                self.open = open

    class Model(nnx.Module):
        def __init__(self) -> None:
            self.gate = Gate()
            self.dropout = nnx.Dropout(0.1)

    view = nnx.view(Model(), open=True, deterministic=True)
    assert view.gate.open and view.dropout.deterministic
    assert seen == [{"open": True}]


def test_multi_head_attention_view_builds_a_decoding_cache() -> None:
    layer = nnx.MultiHeadAttention(2, 8, rngs=nnx.Rngs(0))
    decoding = nnx.view(layer, decode=True, batch_size=3, max_length=5)
    assert decoding.decode and decoding.cached_key is not None
    assert decoding.cached_key.shape == (3, 5, 2, 4)
    assert layer.cached_key is None and not layer.decode
    with pytest.raises(ValueError, match="give batch_size and max_length together"):
        nnx.view(layer, decode=True, batch_size=3)


def test_view_info_lists_each_class_once_with_its_documented_options() -> None:
    class Twice(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.a = Block(rngs)
            self.b = Block(rngs)

    info = nnx.view_info(Twice(nnx.Rngs(0)))
    assert info.count("BatchNorm:") == 1 and info.count("Dropout:") == 1
    assert "  deterministic: bool | None = None\n    if True," in info
    assert "Dropout:" in nnx.view_info(Block(nnx.Rngs(0)), only=nnx.Dropout)
    assert "BatchNorm" not in nnx.view_info(Block(nnx.Rngs(0)), only=nnx.Dropout)
    assert nnx.view_info(Block(nnx.Rngs(0)), only=nnx.MultiHeadAttention) == ""


def test_view_info_of_a_user_set_view() -> None:
    class Custom(nnx.Module):
        def set_view(self, arg1: bool | None = None, arg2: int | None = None, **kwargs: Any) -> None:
            """Set the view.

            Args:
              arg1: The first argument.
              arg2: The second argument.
                This has two lines.
            """

    expected = (
        f"{Custom.__qualname__}:\n  arg1: bool | None = None\n    The first argument.\n"
        "  arg2: int | None = None\n    The second argument.\n    This has two lines."
    )
    assert nnx.view_info(Custom()) == expected


# -- nnx.Dict attributes, None as a filter, nnx.graphlib ----------------------------------------


def test_dict_items_read_and_write_as_attributes_at_run_time() -> None:
    d: Any = nnx.Dict(a=nnx.Param(jnp.array(1.0)))
    assert d.a is d["a"]
    d.b = nnx.Param(jnp.array(2.0))
    assert sorted(d) == ["a", "b"]
    assert nnx.state(d).paths == (("a",), ("b",))
    again: Any = nnx.merge(*nnx.split(d))
    assert float(again.b[...]) == 2.0
    del d.b
    assert list(d) == ["a"]
    with pytest.raises(AttributeError, match="no attribute or key 'zz'; its keys: \\['a'\\]"):
        d.zz
    with pytest.raises(AttributeError, match="is a dict method"):
        d.keys = 1
    assert callable(d.keys)


def test_none_is_the_filter_that_selects_nothing() -> None:
    d = nnx.Dict(a=nnx.Param(jnp.array(1.0)))
    _, nothing, everything = nnx.split(d, None, ...)
    assert nothing.paths == () and everything.paths == (("a",),)
    assert nnx.state(d, None).paths == ()
    assert nnx.state(d, (None, nnx.Param)).paths == (("a",),)


def test_graphlib_is_the_graph_module() -> None:
    assert nnx.graphlib.split is nnx.split and nnx.graphlib.merge is nnx.merge
