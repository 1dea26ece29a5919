"""The typing suite under ``typecheck/``, as far as pytest runs it.

``typecheck/pass`` and ``typecheck/fail`` are checked by the README's test
command itself (both checkers cover them; a marked error that does not occur
fails through ``warn_unused_ignores`` / ``reportUnnecessaryTypeIgnoreComment``).
Here: the mypy plugin's exact messages (``typecheck/plugin``), the size of the
suite, and that the committed stubs are up to date.
"""

import re
from collections import Counter
from pathlib import Path

import pytest
from mypy import api as mypy_api

from nnx import stubgen

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "typecheck"
EXPECTED = re.compile(r"#\s*([EN]):\s*(.*?)(?=\s+#\s*[EN]:|$)")
REPORTED = re.compile(r"^(?P<path>[^:]+\.py):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*)$")


def expected_messages(path: Path) -> Counter[tuple[str, int, str, str]]:
    """``# E: message  [code]`` / ``# N: Revealed type is ...`` markers, per line."""
    found: Counter[tuple[str, int, str, str]] = Counter()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        code_part, sep, comment = text.partition("  # ")
        if not sep or code_part.lstrip().startswith("#"):
            continue
        for tag, message in EXPECTED.findall("# " + comment):
            found[(path.name, number, tag, message.strip())] += 1
    return found


def reported_messages(output: str) -> Counter[tuple[str, int, str, str]]:
    found: Counter[tuple[str, int, str, str]] = Counter()
    for line in output.splitlines():
        m = REPORTED.match(line)
        if m is None:
            continue
        tag = "E" if m["severity"] == "error" else "N"
        if tag == "N" and not m["message"].startswith("Revealed type"):
            continue
        found[(Path(m["path"]).name, int(m["line"]), tag, m["message"].strip())] += 1
    return found


def test_plugin_reports_exactly_the_marked_messages() -> None:
    files = sorted((SUITE / "plugin").glob("*.py"))
    assert files
    stdout, stderr, _ = mypy_api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--no-error-summary", *map(str, files)]
    )
    assert not stderr, stderr
    expected: Counter[tuple[str, int, str, str]] = Counter()
    for path in files:
        expected += expected_messages(path)
    reported = reported_messages(stdout)
    missing = sorted((expected - reported).elements())
    unexpected = sorted((reported - expected).elements())
    assert not missing and not unexpected, f"missing: {missing}\nunexpected: {unexpected}"


def count_cases() -> dict[str, int]:
    """One case per assert_type / annotated check in pass/, per marked line in fail/,
    per expected message in plugin/."""
    checks = re.compile(r"assert_type\(|^\w+: [\w.\[\], ]+ = |^\S.*= nnx\.(state|split|pop)\(")
    passing = sum(
        1 for f in (SUITE / "pass").glob("*.py") for line in f.read_text().splitlines() if checks.search(line)
    )
    failing = sum(
        1
        for f in (SUITE / "fail").glob("*.py")
        for line in f.read_text().splitlines()
        if "# type: ignore[" in line or "# pyright: ignore[" in line
    )
    plugin = sum(sum(expected_messages(f).values()) for f in (SUITE / "plugin").glob("*.py"))
    return {"pass": passing, "fail": failing, "plugin": plugin}


def test_suite_has_at_least_80_cases() -> None:
    counts = count_cases()
    assert sum(counts.values()) >= 80, counts
    assert all(counts.values()), counts


def test_marker_parsing_finds_several_markers_on_one_line(tmp_path: Path) -> None:
    case = tmp_path / "case.py"
    case.write_text('x  # E: first message  [code-a]  # E: second  [code-b]\n# E: a comment line, not a case\n')
    assert expected_messages(case) == Counter(
        {("case.py", 1, "E", "first message  [code-a]"): 1, ("case.py", 1, "E", "second  [code-b]"): 1}
    )


def test_committed_stubs_are_up_to_date() -> None:
    assert stubgen.main([str(SUITE / "models.py"), str(SUITE / "real"), "-o", str(ROOT / "stubs"), "--check"]) == 0


MARKED = re.compile(r"#\s*(type|pyright):\s*ignore\[")


def without_marked_lines(text: str) -> str:
    """The case file with each line that carries an expected-error marker replaced by ``pass``
    (same indentation, same line numbers)."""
    lines = text.splitlines()
    kept = [
        line[: len(line) - len(line.lstrip())] + "pass"
        if MARKED.search(line) and not line.lstrip().startswith(("import ", "from "))  # imports are not cases
        else line
        for line in lines
    ]
    return "\n".join(kept) + "\n"


@pytest.mark.parametrize("case", sorted((SUITE / "real").glob("*_real.py")), ids=lambda p: p.name)
def test_real_corpus_runs_with_marked_lines_removed(case: Path) -> None:
    """Valid code is proven by running it, not assumed: every corpus file executes once its
    expected errors are taken out."""
    code = compile(without_marked_lines(case.read_text()), str(case), "exec")
    exec(code, {"__name__": f"corpus_{case.stem}"})


def test_marked_lines_are_replaced_in_place() -> None:
    text = "a = 1\n    b.c  # type: ignore[nnx-state-path]\nd = 2  # pyright: ignore[reportX]\n"
    assert without_marked_lines(text) == "a = 1\n    pass\npass\n"
