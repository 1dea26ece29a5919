"""Every script under examples/ runs, answers ``--help``, and refuses bad flags in one line.

Scripts run in their shortened mode (``--quick``: a few steps), asserting that
their metric improved; ``python examples/<name>.py`` runs the full version. A
bad flag or value must end the process with exit status 2 and one line on
stderr (no usage block, no traceback); an unknown flag is checked in a fresh
interpreter per script, a few started at once.
"""

import os
import runpy
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

# Files starting with "_" are helpers the examples import, not examples.
EXAMPLES = sorted(p for p in (Path(__file__).parent.parent / "examples").glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples() -> None:
    assert EXAMPLES


def run_in_process(path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``python examples/<name>.py ARGS``, in this process (JAX is already started here)."""
    monkeypatch.delenv("NNX_EXAMPLES_QUICK", raising=False)
    monkeypatch.setattr(sys, "argv", [str(path), *args])  # not pytest's own arguments
    monkeypatch.syspath_prepend(str(path.parent))  # pyright: ignore[reportUnknownMemberType]  # as `python examples/x.py` does, for examples/_cli.py
    runpy.run_path(str(path), run_name="__main__")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_quick(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run_in_process(path, ["--quick"], monkeypatch)
    assert capsys.readouterr().out  # it reported something


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_answers_help(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit:
        run_in_process(path, ["--help"], monkeypatch)
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--quick" in out, out


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_refuses_bad_values_in_one_line(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit):
        run_in_process(path, ["--help"], monkeypatch)
    counts = [flag for flag in ("--steps", "--epochs") if flag in capsys.readouterr().out]
    bad = [["--quick=yes"], *([flag, value] for flag in counts for value in ("0", "-3", "many"))]
    for args in bad:
        with pytest.raises(SystemExit) as exit:
            run_in_process(path, args, monkeypatch)
        assert exit.value.code == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"{path.name}: error: ") and args[0].split("=")[0] in err, err


def run_with_a_bad_flag(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("NNX_EXAMPLES_QUICK", None)
    return subprocess.run([sys.executable, str(path), "--no-such-flag"], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def bad_flag_runs() -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Every example with an unknown flag, a few processes at a time; each test waits for its own."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield {p.name: pool.submit(run_with_a_bad_flag, p) for p in EXAMPLES}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_refuses_an_unknown_flag_in_one_line(
    path: Path, bad_flag_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    done = bad_flag_runs[path.name].result()
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"{path.name}: error: unrecognized arguments: --no-such-flag (see {path.name} --help)\n"
