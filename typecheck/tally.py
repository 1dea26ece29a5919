"""Tally false positives and false negatives of both checkers on the real-model corpus.

``python typecheck/tally.py`` runs mypy (with the plugin) and pyright (with the stubs) on
``typecheck/real`` and counts, per checker: cases (marked lines for it in the fail files,
plus every line of the pass files), false negatives (a marker whose error did not occur:
mypy's "unused type: ignore", pyright's "unnecessary pyright: ignore") and false positives
(any other error). It is the note's measuring stick, not a test: the README's test command
already fails on any of these.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "typecheck" / "real").glob("*_real.py"))
BIN = Path(sys.executable).parent


def _cases(marker: str) -> int:
    marked = sum(1 for f in CORPUS if f.name.startswith("fail") for line in f.read_text().splitlines() if marker in line)
    valid = sum(
        1
        for f in CORPUS
        if f.name.startswith("pass")
        for line in f.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "import", "from", ")", '"""')) and not line.startswith(" ")
    )
    return marked + valid


def _lines(reports: list[str]) -> int:
    """How many distinct source lines the reports are on (a case is a line): each report
    starts ``path:line:``."""
    return len({tuple(re.sub(r"^.*/", "", r).split(":")[:2]) for r in reports})


Result = dict[str, "int | list[str]"]


def mypy() -> Result:
    out = subprocess.run(
        [str(BIN / "mypy"), "--no-error-summary", "--warn-unused-ignores", *map(str, CORPUS)],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout
    errors = [l for l in out.splitlines() if ": error:" in l]
    fn = [l for l in errors if 'Unused "type: ignore' in l]
    fp = [l for l in errors if l not in fn]
    return {"cases": _cases("# type: ignore["), "fp": _lines(fp), "fn": _lines(fn), "fp_lines": fp, "fn_lines": fn}


def pyright() -> Result:
    out = subprocess.run(
        [str(BIN / "pyright"), "--outputjson", *map(str, CORPUS)], cwd=ROOT, capture_output=True, text=True
    ).stdout
    report: dict[str, list[dict[str, Any]]] = json.loads(out)
    diags = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    lines = [
        f"{Path(d['file']).name}:{d['range']['start']['line'] + 1}: {str(d['message']).splitlines()[0]} ({d.get('rule', '')})"
        for d in diags
    ]
    fn = [l for l in lines if "Unnecessary" in l and "ignore" in l]
    fp = [l for l in lines if l not in fn]
    return {"cases": _cases("# pyright: ignore["), "fp": _lines(fp), "fn": _lines(fn), "fp_lines": fp, "fn_lines": fn}


if __name__ == "__main__":
    verbose = "-v" in sys.argv
    for name, run in (("mypy", mypy), ("pyright", pyright)):
        result = run()
        print(f"{name}: cases={result['cases']} FP={result['fp']} FN={result['fn']}")
        if verbose:
            for key in ("fp_lines", "fn_lines"):
                shown = result[key]
                for line in shown if isinstance(shown, list) else []:
                    print("   ", re.sub(r"^.*/", "", line))
