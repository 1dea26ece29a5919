"""Every ```python block of the README runs on its own and prints what its comments say.

Each block runs in a fresh interpreter, as a reader pasting it would run it, so
a block must bring its own imports and inputs. On a line ``print(x)  # 3.0``
the comment is what that print writes: runs of whitespace count as one space;
whitespace just inside brackets and a comma before a closing bracket do not
count (so a comment can show a multi-line tree on one line); ``...`` stands
for any text. Blocks fenced as ```py are fragments (shown, not run). The
blocks run a few at a time in parallel, each in its own process.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

README = Path(__file__).parent.parent / "README.md"

# Runs one block with `print` recording what each of the block's own print calls wrote, by line.
RUNNER = r"""
import builtins, io, json, sys
block, record = sys.argv[1], sys.argv[2]
printed = []
real_print = builtins.print
def recording_print(*args, **kwargs):
    frame = sys._getframe(1)
    if frame.f_code.co_filename == block and kwargs.get("file") is None:
        text = io.StringIO()
        real_print(*args, **{**kwargs, "file": text})
        printed.append((frame.f_lineno, text.getvalue()))
    real_print(*args, **kwargs)
builtins.print = recording_print
try:
    with open(block) as f:
        code = compile(f.read(), block, "exec")
    exec(code, {"__name__": "__main__"})
finally:
    with open(record, "w") as f:
        json.dump(printed, f)
"""


@dataclass(frozen=True)
class Block:
    line: int  # of the README, where the code starts
    source: str


def python_blocks(markdown: str) -> list[Block]:
    """The ```python blocks of a markdown text (not ```py, ```bash, ...)."""
    return [
        Block(markdown.count("\n", 0, m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```$", markdown, flags=re.S | re.M)
    ]


BLOCKS = python_blocks(README.read_text())


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    printed: list[tuple[int, str]]  # (line in the block, text) per print call


def run_block(block: Block, directory: Path) -> Run:
    """Run one block in a fresh interpreter (CPU; no device flags but those the block sets itself)."""
    path = directory / f"readme_line_{block.line}.py"
    path.write_text(block.source)
    record = directory / f"readme_line_{block.line}.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(record)],
        capture_output=True, text=True, env=env, cwd=directory, timeout=600,
    )
    printed = [(int(line), str(text)) for line, text in json.loads(record.read_text())] if record.exists() else []
    return Run(done.returncode, done.stdout, done.stderr, printed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Future[Run]]]:
    """Every block, started at once on a small pool of processes; each test waits for its own."""
    directory = tmp_path_factory.mktemp("readme")
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield {b.line: pool.submit(run_block, b, directory) for b in BLOCKS}


# -- printed comments ------------------------------------------------------------


def normalise(text: str) -> str:
    """One space for any run of whitespace, none just inside brackets, no comma before a closing one."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"([(\[{]) | (?=[)\]}])", r"\1", text)
    return re.sub(r",(?=[)\]}])", "", text)


def shows(comment: str, output: str) -> bool:
    """Whether ``output`` is what ``comment`` says, ``...`` standing for any text."""
    pattern = ".*?".join(re.escape(normalise(piece)) for piece in comment.split("..."))
    return re.fullmatch(pattern, normalise(output), flags=re.S) is not None


def printed_comments(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, comment) of every ``print(...)  # comment`` statement."""
    comments = {
        tok.start[0]: tok.string[1:].strip()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            if node.value.func.id == "print":
                end = node.end_lineno or node.lineno
                said = [comments[n] for n in range(node.lineno, end + 1) if n in comments]
                if said:
                    found.append((node.lineno, end, said[-1]))
    return found


def test_comments_match_as_documented() -> None:
    assert shows("3.0", "3.0\n")
    assert not shows("3.0", "3.01")
    assert shows("MLP(hidden=Param(float32[4, 16]), ...)", "MLP(\n  hidden=Param(float32[4, 16]),\n  out=Param(float32[16, 2]),\n)")
    assert shows("MLP(out=Param(float32[16, 2]))", "MLP(\n  out=Param(float32[16, 2]),\n)")
    assert not shows("P(None, 'model')", "PartitionSpec()")
    assert shows("... P(None, 'model') ...", "NamedSharding(mesh=..., spec=P(None, 'model'), memory_kind=device)")
    assert printed_comments("x = 1  # not a print\nprint(\n  x,\n)  # 1\nprint(x)\n") == [(2, 4, "1")]


def test_the_readme_has_runnable_blocks() -> None:
    assert len(BLOCKS) >= 6, [b.line for b in BLOCKS]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"README.md:{b.line}")
def test_block_runs_on_its_own_and_prints_its_comments(block: Block, runs: dict[int, Future[Run]]) -> None:
    run = runs[block.line].result()
    assert run.returncode == 0, f"README.md line {block.line}: the block failed on its own:\n{run.stderr[-3000:]}"
    for first, last, comment in printed_comments(block.source):
        where = f"README.md line {block.line + first - 1}"
        outputs = [text for line, text in run.printed if first <= line <= last]
        assert outputs, f"{where}: the print never ran, but its comment says it prints {comment!r}"
        for output in outputs:
            assert shows(comment, output), f"{where}: the comment says {comment!r}, the line printed {output!r}"
