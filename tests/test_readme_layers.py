"""The README's "Layers, optimizer, metrics" snippet runs as written and trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nnx

README = Path(__file__).parent.parent / "README.md"


def test_the_training_snippet_runs_and_learns(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    start = text.index("\n## Layers, optimizer, metrics\n")
    (block,) = re.findall(r"```python\n(.*?)```", text[start : text.index("\n### Examples\n", start)], flags=re.S)
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile(block, str(README), "exec"), namespace)
    assert capsys.readouterr().out.startswith("100 ")  # the step count the snippet prints
    metrics = namespace["metrics"]
    assert isinstance(metrics, nnx.MultiMetric)
    accuracy = float(metrics.compute()["accuracy"])
    assert accuracy > 0.8, f"the README's training loop reached only {accuracy:.2f} accuracy"
