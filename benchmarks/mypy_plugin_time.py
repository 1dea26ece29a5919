"""The cost of nnx.mypy_plugin: mypy on examples/ with and without it, clean cache each run.

    python benchmarks/mypy_plugin_time.py [--rounds 3] [paths...]

Both runs use the project's mypy configuration; the only difference is the
``plugins`` setting. Prints each run's wall time, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def config(with_plugin: bool, folder: Path) -> Path:
    """A mypy ini file with the project's [tool.mypy] settings, plugin on or off."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[mypy]", "strict = True", f"python_version = {settings['python_version']}", "warn_unused_ignores = True"]
    if with_plugin:
        lines.append("plugins = nnx.mypy_plugin")
    lines += ["[mypy-optax.*]", "ignore_missing_imports = True"]
    path = folder / ("with.ini" if with_plugin else "without.ini")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(with_plugin: bool, paths: list[str]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        ini = config(with_plugin, Path(folder))
        cache = Path(folder) / "cache"  # a fresh, empty cache every run
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir", str(cache), *paths],
            cwd=ROOT, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mypy failed ({'with' if with_plugin else 'without'} plugin):\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("paths", nargs="*", default=["examples"])
    args = parser.parse_args()
    without: list[float] = []
    with_: list[float] = []
    for _ in range(args.rounds):  # interleaved, so that machine load hits both alike
        without.append(run(False, args.paths))
        with_.append(run(True, args.paths))
    print("without plugin:", " ".join(f"{t:.1f}s" for t in without))
    print("with plugin:   ", " ".join(f"{t:.1f}s" for t in with_))
    a, b = statistics.median(without), statistics.median(with_)
    print(f"median {a:.1f}s -> {b:.1f}s, ratio {b / a:.3f}")


if __name__ == "__main__":
    main()
