"""The cost of the typing tools: mypy with and without the nnx plugin, and pyright with and
without the generated stubs, on examples/ plus the real-model corpus, clean cache each run.

    python benchmarks/mypy_plugin_time.py [--rounds 3] [paths...]

All mypy runs use the project's mypy settings; the only difference is the
``plugins`` setting: none, ``nnx.mypy_plugin`` (which imports the ``nnx``
package, hence JAX, when mypy loads it) and ``nnx_mypy`` (the same plugin,
importing only mypy). The pyright runs differ only in ``stubPath`` (the
project's ``stubs/``, or an empty folder). Prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def config(plugin: str | None, folder: Path) -> Path:
    """A mypy ini file with the project's [tool.mypy] settings and ``plugin`` (or none)."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[mypy]", "strict = True", f"python_version = {settings['python_version']}", "warn_unused_ignores = True"]
    if plugin is not None:
        lines.append(f"plugins = {plugin}")
    lines += ["[mypy-optax.*]", "ignore_missing_imports = True"]
    path = folder / "mypy.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(plugin: str | None, paths: list[str]) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of one mypy run; CPU time (user + system of the
    child) is what to compare on a shared machine, where wall time mostly measures load."""
    with tempfile.TemporaryDirectory() as folder:
        ini = config(plugin, Path(folder))
        cache = Path(folder) / "cache"  # a fresh, empty cache every run
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir", str(cache), *paths],
            cwd=ROOT, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"mypy failed (plugin {plugin}):\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


#: What the corpus adds to examples/ (the fail files carry plugin codes, so they are not
#: valid without the plugin and are left out: the comparison needs the same files both ways).
CORPUS = ["typecheck/real/models.py", "typecheck/real/base.py", "typecheck/real/pass_real.py"]


def run_pyright(stubs: Path, paths: list[str]) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of one pyright run with ``stubPath = stubs``."""
    import json
    import os

    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "pyrightconfig.json"

        def rel(path: Path) -> str:  # pyright reads the paths of a config relative to it
            return os.path.relpath(path, folder)

        project.write_text(
            json.dumps(
                {
                    "include": [rel(ROOT / p) for p in paths],
                    "stubPath": rel(stubs),
                    "venvPath": rel(ROOT),
                    "venv": ".venv",
                    "typeCheckingMode": "strict",
                    "pythonVersion": "3.11",
                }
            )
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "pyright"), "-p", str(project)], cwd=ROOT, capture_output=True)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def pyright_ratio(rounds: int, paths: list[str]) -> None:
    walls: dict[str, list[float]] = {"no stubs": [], "stubs": []}
    cpus: dict[str, list[float]] = {"no stubs": [], "stubs": []}
    with tempfile.TemporaryDirectory() as empty:
        for _ in range(rounds):
            for name, folder in (("no stubs", Path(empty)), ("stubs", ROOT / "stubs")):
                wall, cpu = run_pyright(folder, paths)
                walls[name].append(wall)
                cpus[name].append(cpu)
    base = statistics.median(cpus["no stubs"])
    for name in walls:
        cpu = statistics.median(cpus[name])
        print(f"pyright {name:9} CPU median {cpu:5.1f}s (ratio {cpu / base:.3f})  wall median {statistics.median(walls[name]):5.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("paths", nargs="*", default=["examples", *CORPUS])
    parser.add_argument("--no-pyright", action="store_true", help="time mypy only")
    args = parser.parse_args()
    plugins: list[str | None] = [None, "nnx.mypy_plugin", "nnx_mypy"]
    walls: dict[str | None, list[float]] = {p: [] for p in plugins}
    cpus: dict[str | None, list[float]] = {p: [] for p in plugins}
    for _ in range(args.rounds):  # interleaved, so that machine load hits every setting alike
        for plugin in plugins:
            wall, cpu = run(plugin, args.paths)
            walls[plugin].append(wall)
            cpus[plugin].append(cpu)
    base_wall, base_cpu = statistics.median(walls[None]), statistics.median(cpus[None])
    for plugin in plugins:
        wall, cpu = statistics.median(walls[plugin]), statistics.median(cpus[plugin])
        print(
            f"{plugin or 'no plugin':16} CPU median {cpu:5.1f}s (ratio {cpu / base_cpu:.3f})  "
            f"wall median {wall:5.1f}s (ratio {wall / base_wall:.3f})  "
            f"CPU runs {' '.join(f'{t:.1f}' for t in cpus[plugin])}"
        )
    if not args.no_pyright:
        pyright_ratio(args.rounds, args.paths)

if __name__ == "__main__":
    main()
