"""How much of Flax 0.12.8's own NNX test suite passes against nnx.

Downloads Flax's source distribution with pip into a temporary directory,
takes the test files of ``tests/nnx/`` listed in ``FILES``, rewrites only their
import lines so that ``nnx`` names this package (``from flax import nnx`` becomes
``import nnx``, ``from flax.nnx.X import Y`` becomes ``from nnx.X import Y``),
and runs each file with pytest in its own subprocess under a time limit.
Nothing of Flax's is written into this repository; the temporary directory is
removed at the end (``--keep`` keeps it).

Counting, per file:

  total     the tests pytest collects from the *original* file against Flax
            (parametrized cases counted one by one): the denominator;
  passed    tests that pass against nnx;
  skipped   tests that skip themselves against nnx (device counts, platforms);
  failed    everything else: failures, errors, and tests that never ran because
            the rewritten file did not import or the file ran out of time.

Honesty rules of the rewrite:

* Flax modules other than ``flax.nnx`` stay Flax's: ``flax.linen`` (the tests'
  numerical reference), ``flax.struct``, ``flax.typing``, ``flax.config``.  A
  test that needs them still runs nnx for the nnx side.
* ``from flax import errors`` becomes nnx's error classes (``nnx`` itself), the
  translation a user makes.
* An import of a name nnx lacks (``from flax.nnx.transforms import general``)
  binds a placeholder that raises on use, so only the tests using it fail,
  not the whole file.
* The rewritten files are checked to contain no ``flax.nnx`` import before
  they run, and each run asserts that ``nnx`` resolves to this package.

Usage::

    python benchmarks/flax_tests.py [--timeout 900] [--only rngs,metrics]
                                    [--json results.json] [--reasons 15] [--keep]

``--reasons N`` prints the N most common first lines of failure messages
(what to build next); ``--json`` writes every test's outcome and message.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

FLAX_VERSION = "0.12.8"
FILES = [
    "graph_utils_test.py", "module_test.py", "rngs_test.py", "variable_test.py", "containers_test.py",
    "filters_test.py", "state_test.py", "transforms_test.py", "optimizer_test.py", "metrics_test.py",
    "nn/attention_test.py", "nn/conv_test.py", "nn/embed_test.py", "nn/linear_test.py", "nn/lora_test.py",
    "nn/normalization_test.py", "nn/recurrent_test.py", "nn/stochastic_test.py",
]  # fmt: skip

# Records every test's outcome as one JSON line in $FLAX_TESTS_LOG while the
# run goes, so a file that times out still reports the tests it finished.
CONFTEST = '''
import json, os
import pytest

def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        message = ""
        if report.outcome == "failed":
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
        elif report.outcome == "skipped" and isinstance(report.longrepr, tuple):
            message = report.longrepr[2]
        with open(os.environ["FLAX_TESTS_LOG"], "a") as log:
            log.write(json.dumps({"id": report.nodeid, "when": report.when, "outcome": report.outcome,
                                  "message": message}) + "\\n")

def pytest_collectreport(report):
    if report.failed:
        with open(os.environ["FLAX_TESTS_LOG"], "a") as log:
            log.write(json.dumps({"id": report.nodeid, "when": "collect", "outcome": "failed",
                                  "message": str(report.longrepr).strip().splitlines()[-1]}) + "\\n")
'''

CHECK_NNX = '''
def _check_nnx_is_ours():
    import os.path as _path
    import nnx as _nnx
    _package = _path.dirname(_path.dirname(_nnx.__file__))
    assert _path.basename(_package) != "flax", f"nnx resolves to Flax's: {_nnx.__file__}"
_check_nnx_is_ours()
'''

# A stand-in for a name nnx does not have: importing works, using it fails.
MISSING = '''
class _Missing:
    def __init__(self, name):
        object.__setattr__(self, "_name", name)
    def __getattr__(self, attr):
        raise AttributeError(f"nnx has no {self._name} (needed for .{attr})")
    def __call__(self, *args, **kwargs):
        raise TypeError(f"nnx has no {self._name}")
'''

PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"


def download(workdir: Path) -> Path:
    """Flax's sdist, fetched with pip and unpacked; returns its ``tests/nnx`` folder."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(workdir),
         f"flax=={FLAX_VERSION}"],
        check=True,
    )  # fmt: skip
    (archive,) = workdir.glob(f"flax-{FLAX_VERSION}.tar.gz")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/tests/nnx/" in m.name]
        tar.extractall(workdir, members=members, filter="data")
    return workdir / f"flax-{FLAX_VERSION}" / "tests" / "nnx"


_FROM_FLAX = re.compile(r"^(\s*)from flax import (.+?)\s*$")
_FROM_FLAX_NNX = re.compile(r"^(\s*)from flax\.nnx((?:\.\w+)*) import (.+?)\s*$")


def rewrite_line(line: str) -> str:
    """One import line with ``flax.nnx`` replaced by nnx; any other line unchanged."""
    if match := _FROM_FLAX.match(line):
        indent, names = match[1], [n.strip() for n in match[2].split(",")]
        out = []
        if "nnx" in names:
            out.append(f"{indent}import nnx")
        if "errors" in names:
            out.append(f"{indent}import nnx as errors  # nnx's error classes")
        rest = [n for n in names if n not in ("nnx", "errors")]
        if rest:
            out.append(f"{indent}from flax import {', '.join(rest)}")
        return "\n".join(out) + "\n"
    if match := _FROM_FLAX_NNX.match(line):
        indent, module, names = match[1], match[2], [n.strip() for n in match[3].split(",")]
        lines = []
        for name in names:
            lines += [
                f"{indent}try:",
                f"{indent}    from nnx{module} import {name}",
                f"{indent}except ImportError:",
                f"{indent}    {name} = _Missing('nnx{module}.{name}')",
            ]
        return "\n".join(lines) + "\n"
    return line


def rewrite(source: str) -> str:
    """A test file's source with its flax.nnx imports pointing at nnx (and a guard that they do)."""
    lines = [rewrite_line(line) for line in source.splitlines(keepends=True)]
    text = "".join(lines)
    if re.search(r"^\s*(from flax\.nnx|import flax\.nnx|from flax import .*\bnnx\b)", text, re.M):
        raise RuntimeError("a flax.nnx import survived the rewrite")
    # after the license header and `from __future__` lines, before the first real import
    future = list(re.finditer(r"^from __future__ import .*\n", text, re.M))
    at = future[-1].end() if future else 0
    return text[:at] + MISSING + CHECK_NNX + text[at:]


def pytest_cmd(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:randomly", "--import-mode=importlib", *extra]


def collect_original(path: Path, root: Path) -> list[str]:
    """Test ids pytest collects from the original file against Flax itself."""
    result = subprocess.run(
        pytest_cmd(path, "--collect-only"), cwd=root, capture_output=True, text=True, timeout=600
    )
    ids = [line.strip() for line in result.stdout.splitlines() if "::" in line]
    return [i.split("::", 1)[1] for i in ids]


def run_rewritten(path: Path, root: Path, timeout: float) -> tuple[dict[str, dict[str, str]], bool, float]:
    """Runs one rewritten file; returns {test: record}, whether it timed out, and seconds taken."""
    log = path.with_suffix(".log.jsonl")
    env = dict(os.environ, FLAX_TESTS_LOG=str(log), JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    start = time.perf_counter()
    timed_out = False
    try:
        subprocess.run(pytest_cmd(path), cwd=root, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    records: dict[str, dict[str, str]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            test = record["id"].split("::", 1)[1] if "::" in record["id"] else record["id"]
            previous = records.get(test)
            # keep the worst of setup/call/teardown
            if previous is None or previous["outcome"] == "passed" or record["outcome"] == "failed":
                records[test] = record
    return records, timed_out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per file")
    parser.add_argument("--only", default="", help="comma-separated file stems to run, e.g. rngs,metrics")
    parser.add_argument("--json", default="", help="write every test's outcome here")
    parser.add_argument("--reasons", type=int, default=0, help="print the N most common failure messages")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    files = FILES
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        files = [f for f in FILES if Path(f).stem.removesuffix("_test") in wanted]

    workdir = Path(tempfile.mkdtemp(prefix="flax_tests_"))
    try:
        original_root = download(workdir)
        rewritten_root = workdir / "rewritten"
        (rewritten_root / "nn").mkdir(parents=True)
        (rewritten_root / "conftest.py").write_text(CONFTEST)
        (rewritten_root / "pytest.ini").write_text(PYTEST_INI)
        (original_root.parent.parent / "pytest.ini").write_text(PYTEST_INI)

        rows, everything = [], {}
        print(f"{'file':28} {'total':>6} {'passed':>7} {'failed':>7} {'skipped':>8}  {'time':>6}")
        for name in files:
            original = original_root / name
            target = rewritten_root / name
            target.write_text(rewrite(original.read_text()))
            expected = collect_original(original, original_root.parent.parent)
            records, timed_out, seconds = run_rewritten(target, rewritten_root, args.timeout)
            passed = sum(1 for t in expected if records.get(t, {}).get("outcome") == "passed")
            skipped = sum(1 for t in expected if records.get(t, {}).get("outcome") == "skipped")
            total = len(expected)
            failed = total - passed - skipped
            note = " (timed out)" if timed_out else ""
            collect_errors = [r for t, r in records.items() if r["when"] == "collect"]
            if collect_errors:
                note += f" (did not import: {collect_errors[0]['message'][:60]})"
            print(f"{name:28} {total:6} {passed:7} {failed:7} {skipped:8}  {seconds:5.0f}s{note}", flush=True)
            rows.append((total, passed, failed, skipped))
            for test in expected:
                record = records.get(test, {"outcome": "not run", "message": "did not run", "when": ""})
                everything[f"{name}::{test}"] = record
        total, passed, failed, skipped = (sum(col) for col in zip(*rows))
        runnable = total - skipped
        share = 100.0 * passed / runnable if runnable else 0.0
        print(f"{'TOTAL':28} {total:6} {passed:7} {failed:7} {skipped:8}")
        print(f"passed {passed} of {runnable} runnable ({share:.1f}%)")

        if args.reasons:
            messages = collections.Counter(
                _reason(r["message"]) for r in everything.values() if r["outcome"] not in ("passed", "skipped")
            )
            print(f"\nmost common failure messages ({sum(messages.values())} failures):")
            for message, count in messages.most_common(args.reasons):
                print(f"{count:6}  {textwrap.shorten(message, 110)}")
        if args.json:
            Path(args.json).write_text(json.dumps(everything, indent=1))
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)


def _reason(message: str) -> str:
    """A failure message with its numbers and object addresses blurred, so alike failures group."""
    message = message.splitlines()[0] if message else "(no message)"
    return re.sub(r"0x[0-9a-f]+", "0x…", message)


if __name__ == "__main__":
    main()
