"""The README's Display, Checkpoints and Sharding snippets run as written, in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def snippets() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Display\n")
    return re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)


def test_the_snippets_run(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = snippets()
    assert len(blocks) == 3
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:  # later snippets use the model the first one built
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "hidden=Param(float32[4, 16])" in out  # the repr
    assert "MLP summary" in out  # the table
    assert "['default.count', 'default.key']" in out  # the mismatch report: what the checkpoint lacks
    assert "P(None, 'model')" in out  # the partition specs
