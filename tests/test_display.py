"""Display: the module repr, nnx.display (text and treescope) and nnx.tabulate."""

from __future__ import annotations

import builtins
import importlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx
from nnx.display import text_tree
from nnx.jaxapi import shape_dtype


class Linear(nnx.Module):
    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.w = nnx.Param(jax.random.normal(rngs.params(), (din, dout)))
        self.b = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w.value + self.b.value


class Norm(nnx.Module):
    def __init__(self, n: int) -> None:
        self.scale = nnx.Param(jnp.ones((n,)))
        self.mean = nnx.BatchStat(jnp.zeros((n,)))

    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        if train:
            self.mean.value = x.mean(0)
        return (x - self.mean.value) * self.scale.value


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.inp = Linear(3, 5, rngs=rngs)
        self.norm = Norm(5)
        self.hidden = Linear(5, 5, rngs=rngs)
        self.again = self.hidden  # shared: called twice, stored once
        self.out = Linear(5, 2, rngs=rngs)
        self.rngs = rngs

    def __call__(self, x: jax.Array, *, train: bool = True) -> jax.Array:
        h = jax.nn.relu(self.norm(self.inp(x), train=train))
        h = jax.nn.relu(self.again(self.hidden(h)))
        return self.out(h)


# -- repr ------------------------------------------------------------------------------


def test_repr_shows_shapes_and_dtypes_not_values() -> None:
    model = Linear(2, 3, rngs=nnx.Rngs(0))
    model.w.value = jnp.full((2, 3), 123.456)
    text = repr(model)
    assert "Param(float32[2, 3])" in text
    assert "123.456" not in text


def test_repr_marks_shared_modules_cells_and_cycles() -> None:
    model = MLP(rngs=nnx.Rngs(0))
    setattr(model, "tied", model.inp.w.replace(jnp.ones((3, 5))))  # setattr: surgery the class does not declare
    setattr(model, "tied2", nnx.cell(model, "tied"))  # the same cell twice
    setattr(model, "parent", model)  # a cycle
    text = repr(model)
    assert "again=Linear(" in text  # first path (sorted attribute order) gets the body
    assert "hidden=<shared Linear at again>" in text
    assert "tied2=<shared Param at tied>" in text
    assert "parent=<shared MLP at <root>>" in text
    assert "RngKey(key<fry>[])" in text


def test_repr_of_plain_arrays_and_abstract_leaves() -> None:
    model = Norm(4)
    setattr(model, "table", np.zeros((2, 2), dtype=np.int8))
    setattr(model, "ghost", shape_dtype((7,), jnp.bfloat16))
    text = repr(model)
    assert "table=ndarray(int8[2, 2])" in text
    assert "ghost=ShapeDtypeStruct(bfloat16[7])" in text


# -- display ---------------------------------------------------------------------------


def test_display_text_prints_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    model = MLP(rngs=nnx.Rngs(0))
    nnx.display(model, nnx.state(model, nnx.BatchStat), backend="text")
    out = capsys.readouterr().out
    assert text_tree(model) in out
    assert "BatchStat(float32[5])" in out


def test_display_outside_a_notebook_uses_text_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    model = Norm(2)
    nnx.display(model)
    assert capsys.readouterr().out.strip() == repr(model)


def test_display_with_treescope_renders_nnx_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    model = MLP(rngs=nnx.Rngs(0))
    nnx.display(model, backend="treescope")
    out = capsys.readouterr().out
    assert "MLP(" in out and "Param(" in out and "BatchStat(" in out
    assert "float32" in out


def test_display_with_treescope_shows_state_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    model = MLP(rngs=nnx.Rngs(0))
    nnx.display(nnx.state(model, nnx.BatchStat), backend="treescope")
    out = capsys.readouterr().out
    assert "State(" in out and "'norm'" in out and "BatchStat(" in out


def test_display_treescope_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_treescope(name: str, package: str | None = None) -> Any:
        if name.startswith("treescope"):
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_treescope)
    with pytest.raises(ImportError, match=r"pip install treescope \(or, in an nnx checkout, pip install -e '\.\[display\]'\)"):
        nnx.display(Norm(2), backend="treescope")


def test_display_rejects_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        nnx.display(Norm(2), backend="html")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the error under test


# -- tabulate --------------------------------------------------------------------------


def test_tabulate_lists_calls_shapes_and_state_sizes() -> None:
    model = MLP(rngs=nnx.Rngs(0))
    before = nnx.state(model)
    table = nnx.tabulate(model, jnp.ones((4, 3)), train=True)
    # Every call of a submodule has a row, the shared one twice (as hidden... first path "again").
    for name in ("inp", "norm", "again", "out"):
        assert any(line.lstrip("│| ").startswith(name) for line in table.splitlines()), name
    assert table.count("again") >= 2
    assert "float32[4, 3]" in table and "float32[4, 5]" in table and "float32[4, 2]" in table
    assert "train=True" in table
    # Sizes: parameters counted once even though `hidden` is reachable twice.
    params = nnx.state(model, nnx.Param)
    shapes: list[tuple[int, ...]] = [v.shape for v in params.leaves]
    n_params = sum(math.prod(shape) for shape in shapes)
    assert n_params == 3 * 5 + 5 + 5 * 5 + 5 + 5 * 2 + 2 + 5
    assert f"{n_params} ({n_params * 4} B)" in table
    assert "Total" in table
    # Abstract evaluation on a copy: the model (its BatchStat, its RNG count) is untouched.
    after = nnx.state(model)
    assert all(_equal(a, b) for a, b in zip(before.leaves, after.leaves))


def _equal(a: Any, b: Any) -> bool:
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        a, b = jax.random.key_data(a), jax.random.key_data(b)
    return bool(np.array_equal(a, b))


def test_tabulate_accepts_abstract_inputs_and_depth() -> None:
    model = MLP(rngs=nnx.Rngs(0))
    table = nnx.tabulate(model, shape_dtype((8, 3), jnp.float32), depth=0)
    assert "MLP" in table and "float32[8, 2]" in table
    assert "Linear" not in table  # depth=0 keeps only the root call


def test_tabulate_without_rich_prints_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_rich(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("rich"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rich)
    table = nnx.tabulate(Linear(2, 3, rngs=nnx.Rngs(0)), jnp.ones((1, 2)))
    assert "│" not in table and "|" in table
    assert "Linear" in table and "9 (36 B)" in table


def test_tabulate_errors_name_the_problem() -> None:
    with pytest.raises(AttributeError, match="no method 'encode'"):
        nnx.tabulate(Linear(2, 3, rngs=nnx.Rngs(0)), jnp.ones((1, 2)), method="encode")
    with pytest.raises(TypeError, match="expected a module"):
        nnx.tabulate(jnp.ones(3))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # the error under test


class Scaled(Linear):
    """Calls its base class's __call__: one call, one row."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return super().__call__(x) * 2.0


class Broken(nnx.Module):
    def __init__(self) -> None:
        self.inner = Scaled(2, 2, rngs=nnx.Rngs(0))

    def __call__(self, x: jax.Array) -> jax.Array:
        raise RuntimeError(f"broken after {self.inner(x).shape}")


def test_tabulate_records_a_subclass_call_once_and_restores_the_classes() -> None:
    class Plain(Linear):  # inherits __call__: tabulate must not leave one behind
        pass

    class Outer(nnx.Module):
        def __init__(self) -> None:
            self.inner = Scaled(2, 3, rngs=nnx.Rngs(0))
            self.plain = Plain(3, 3, rngs=nnx.Rngs(1))

        def __call__(self, x: jax.Array) -> jax.Array:
            return self.plain(self.inner(x))

    table = nnx.tabulate(Outer(), jnp.ones((1, 2)))
    assert table.count("Scaled") == 1 and table.count("Plain") == 1
    assert "Linear" not in table  # the base-class call inside is the same call
    assert vars(Outer)["__call__"].__qualname__.endswith("Outer.__call__")
    assert "__call__" not in vars(Plain)
    with pytest.raises(RuntimeError, match=r"broken after \(1, 2\)"):
        nnx.tabulate(Broken(), jnp.ones((1, 2)))
    # Whatever happened, the classes are as they were: calls run unrecorded and unwrapped.
    assert vars(Scaled)["__call__"].__qualname__ == "Scaled.__call__"
    assert vars(Linear)["__call__"].__qualname__ == "Linear.__call__"
    assert "__call__" in vars(Broken) and vars(Broken)["__call__"].__qualname__ == "Broken.__call__"
