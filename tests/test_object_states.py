"""The hand-written State classes of nnx's objects (``nnx/object_states.pyi``) hold the
paths these objects have at run time, and each class declares its own."""

import ast
from pathlib import Path
from typing import Any

import optax  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs

import nnx
from nnx import metrics

STUB = Path(nnx.__file__).with_name("object_states.pyi")


def _declared() -> dict[str, tuple[set[str], str | None]]:
    """``{object class: (fields, type a __getattr__ fallback returns or None)}``."""
    out: dict[str, tuple[set[str], str | None]] = {}
    for cls in ast.parse(STUB.read_text()).body:
        if not isinstance(cls, ast.ClassDef) or not isinstance(cls.bases[0], ast.Subscript):
            continue
        fields = {ast.unparse(s.target) for s in cls.body if isinstance(s, ast.AnnAssign) and not ast.unparse(s.target).startswith("__")}
        fallback = next(
            (ast.unparse(s.returns) for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__getattr__" and s.returns),
            None,
        )
        out[ast.unparse(cls.bases[0].slice)] = (fields, fallback)
    return out


def _top(obj: Any) -> set[str]:
    return {str(path[0]) for path in nnx.state(obj).paths}


def test_fixed_fields_are_exactly_the_run_time_paths() -> None:
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    objects: list[Any] = [
        nnx.Optimizer(model, optax.adam(1e-3)),
        metrics.Average(),
        metrics.Accuracy(),
        metrics.Welford(),
        nnx.Rngs(0).default,
    ]
    declared = _declared()
    for obj in objects:
        fields, fallback = declared[type(obj).__name__]
        assert fallback is None, type(obj).__name__
        assert _top(obj) == fields, (type(obj).__name__, _top(obj) ^ fields)


def test_named_entries_are_typed_by_the_fallback() -> None:
    declared = _declared()
    rngs = nnx.Rngs(0, dropout=1)
    assert declared["Rngs"][1] == "RngStreamState"
    stream_fields = declared["RngStream"][0]
    for name in _top(rngs):
        assert {str(p[0]) for p in nnx.state(rngs)[name].paths} == stream_fields
    multi = metrics.MultiMetric(loss=metrics.Average(), accuracy=metrics.Accuracy())
    assert declared["MultiMetric"][1] is not None and _top(multi) == {"loss", "accuracy"}


def test_each_class_declares_its_own_state_class() -> None:
    """A subclass that did not declare one would get its base's State class (``Accuracy``
    from ``Average``) and, through ``Exact``, fall back to the generic one: each declares."""
    for cls in (nnx.Optimizer, metrics.Average, metrics.Accuracy, metrics.Welford, metrics.MultiMetric, nnx.Rngs, nnx.RngStream):
        source = Path(__import__(cls.__module__, fromlist=["_"]).__file__ or "").read_text()
        assert f"__nnx_state__: StateOf[{cls.__name__}, {cls.__name__}State]" in source, cls.__name__
