"""Every ``pip install`` the project suggests installs something this project names.

The PyPI name ``nnx`` belongs to an unrelated package, so ``pip install
'nnx[checkpoint]'`` would fetch that one. A hint must name either this
project's extra from a checkout (``pip install -e '.[checkpoint]'``) or the
packages themselves by the names pyproject.toml requires them under.
"""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import pytest

import nnx
from nnx.checkpoint import orbax_format, safetensors_format

ROOT = Path(__file__).parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT: str = PYPROJECT["project"]["name"]
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (``orbax-checkpoint>=0.11`` -> ``orbax-checkpoint``)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, f"not a requirement: {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


REQUIRED = {_name(r) for r in [*PYPROJECT["project"]["dependencies"], *(r for rs in EXTRAS.values() for r in rs)]}
REQUIRED.discard(PROJECT)  # the `dev` extra refers to the project itself

# One argument of `pip install`: an option, the checkout with extras, or a requirement (each maybe quoted).
_ARG = re.compile(r"""-[a-zA-Z]|--[a-z-]+|(['"]?)(\.(\[[a-z0-9_,-]+\])?|[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9_,-]+\])?([<>=!~]=?[0-9.*]+)?)\1""")


def pip_install_commands(text: str) -> list[list[str]]:
    """The arguments of every ``pip install`` in ``text``: words up to the first that is not one, or punctuation."""
    commands: list[list[str]] = []
    for match in re.finditer(r"pip install\b", text):
        args: list[str] = []
        for word in re.split(r"[\n`]", text[match.end() :], maxsplit=1)[0].split():
            bare = re.sub(r"(?<=.)[.,;:)\"]+$", "", word)  # the sentence's punctuation, not the argument's
            if not _ARG.fullmatch(bare):
                break
            args.append(bare)
            if bare != word:
                break
        commands.append(args)
    return commands


def problems(command: list[str]) -> list[str]:
    """What is wrong with one ``pip install`` command's arguments (empty when it works for this project)."""
    found: list[str] = []
    packages = [a for a in command if not a.startswith("-")]
    if not packages:
        found.append("installs nothing")
    for arg in packages:
        unquoted = arg.strip("'\"")
        if unquoted.startswith("."):
            extras = re.findall(r"[a-z0-9_-]+", unquoted)
            found += [f"{arg}: no extra {e!r} in pyproject.toml" for e in extras if e not in EXTRAS]
            if "-e" not in command:
                found.append(f"{arg}: install the checkout editable (pip install -e {arg})")
        elif _name(unquoted) == PROJECT:
            found.append(f"{arg}: the PyPI package {PROJECT!r} is not this project; use pip install -e '.[...]' in the checkout")
        elif _name(unquoted) not in REQUIRED:
            found.append(f"{arg}: not a package pyproject.toml requires")
    return found


def test_the_checker_tells_good_commands_from_bad() -> None:
    good = "pip install orbax-checkpoint safetensors (or pip install -e '.[checkpoint]')."
    assert pip_install_commands(good) == [["orbax-checkpoint", "safetensors"], ["-e", "'.[checkpoint]'"]]
    assert all(not problems(c) for c in pip_install_commands(good))
    bad = {
        "pip install 'nnx[display]'": "not this project",
        "``pip install nnx``": "not this project",
        "pip install -e '.[plotting]'": "no extra 'plotting'",
        "pip install '.[display]'": "editable",
        "pip install tensorflow": "not a package pyproject.toml requires",
    }
    for text, why in bad.items():
        (command,) = pip_install_commands(text)
        assert any(why in p for p in problems(command)), (text, problems(command))


def hint_sources() -> list[Path]:
    """Every text a user reads a hint in: the package, examples, benchmarks, README, CI (tests hold patterns)."""
    files = [ROOT / "README.md", ROOT / ".ci" / "run"]
    for folder in ("src", "examples", "benchmarks"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.exists()]


def test_every_install_hint_in_the_sources_works_for_this_project() -> None:
    bad: dict[str, list[str]] = {}
    seen = 0
    for path in hint_sources():
        for command in pip_install_commands(path.read_text()):
            seen += 1
            if problems(command):
                bad[f"{path.relative_to(ROOT)}: pip install {' '.join(command)}"] = problems(command)
    assert seen >= 5, "the scan found almost no hints: is the pattern still right?"
    assert not bad, bad


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import module`` fail as if the package were not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def _missing_treescope() -> None:
    nnx.display(nnx.Rngs(0), backend="treescope")


MISSING: list[tuple[str, tuple[str, ...], Callable[[], object]]] = [
    ("treescope", ("treescope", "treescope.repr_lib", "treescope.type_registries"), _missing_treescope),
    ("safetensors", ("safetensors", "safetensors.numpy"), safetensors_format._safetensors),
    ("orbax-checkpoint", ("orbax", "orbax.checkpoint"), orbax_format._ocp),
]


@pytest.mark.parametrize(("package", "modules", "use"), MISSING, ids=[m[0] for m in MISSING])
def test_a_missing_optional_package_names_commands_that_install_it(
    package: str, modules: tuple[str, ...], use: Callable[[], object], monkeypatch: pytest.MonkeyPatch
) -> None:
    importlib.invalidate_caches()
    _hide(monkeypatch, *modules)
    with pytest.raises(ImportError) as error:
        use()
    commands = pip_install_commands(str(error.value))
    assert commands, f"no install command in: {error.value}"
    assert all(not problems(c) for c in commands), [problems(c) for c in commands]
    named = {_name(a) for c in commands for a in c if not a.startswith(("-", "'", '"', "."))}
    assert package in named, f"the hint does not name {package!r}: {error.value}"
    extras = [e for c in commands for a in c if a.strip("'\"").startswith(".") for e in re.findall(r"[a-z0-9_-]+", a)]
    assert extras, f"the hint gives no command for an nnx checkout: {error.value}"
    for extra in extras:
        assert package in {_name(r) for r in EXTRAS[extra]}, f"the extra {extra!r} does not install {package!r}"
