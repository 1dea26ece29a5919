"""Every script under examples/ runs to completion (each asserts its own result).

Scripts run in their shortened mode (``NNX_EXAMPLES_QUICK=1``: a few steps),
asserting that their metric improved; ``python examples/<name>.py`` runs the
full version.
"""

import runpy
import sys
from pathlib import Path

import pytest

# Files starting with "_" are helpers the examples import, not examples.
EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNX_EXAMPLES_QUICK", "1")
    monkeypatch.setattr(sys, "argv", [str(path)])  # not pytest's own arguments
    monkeypatch.syspath_prepend(str(path.parent))  # pyright: ignore[reportUnknownMemberType]  # as `python examples/x.py` does, for examples/_progress.py
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out  # it reported something
