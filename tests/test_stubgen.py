"""nnx.stubgen: what the stubs declare, --check, and that it never imports the model."""

import ast
import typing
from pathlib import Path

import pytest

from nnx import stubgen

MODEL = '''
import jax
import jax.numpy as jnp
import nnx

raise RuntimeError("stubgen must not import or run the model file")


class Count(nnx.Variable[jax.Array]):
    pass


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    din: int = nnx.static()

    def __init__(self, din: int, *, rngs: nnx.Rngs) -> None:
        self.din = din
        self.w = jnp.zeros((din,))
        self.scale = nnx.Param(jnp.ones(()))
        self.label = "linear"


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = Linear(2, rngs=rngs)
        self.calls = Count(jnp.array(0))
        self.items = [Linear(1, rngs=rngs)]

    def __call__(self, x: jax.Array) -> jax.Array:
        return x


class Deeper(Block):
    extra: jax.Array = nnx.batch_stat()


def helper(x: int) -> int:
    return x + 1


if __name__ == "__main__":
    helper(1)
'''


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    path = package / "models.py"
    path.write_text(MODEL)
    return path


def stub_of(model_file: Path) -> str:
    stubs = stubgen.generate([model_file])
    assert set(stubs) == {Path("pkg/models.pyi"), Path("jaxlib/_jax.pyi")}  # named by the import path
    return stubs[Path("pkg/models.pyi")]


def test_each_module_gets_a_state_class_with_its_fields(model_file: Path) -> None:
    text = stub_of(model_file)
    tree = ast.parse(text)  # a valid stub
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {"Linear", "LinearState", "Block", "BlockState", "Deeper", "DeeperState", "Count"} <= set(classes)
    linear_state = ast.unparse(classes["LinearState"])
    assert "w: jax.Array" in linear_state and "scale: _t.Any" in linear_state
    assert "din" not in linear_state and "label" not in linear_state  # static fields are not paths
    block_state = ast.unparse(classes["BlockState"])
    assert "linear: LinearState" in block_state and "calls: jax.Array" in block_state  # the kind fixes its value type
    # ``items`` is named like a State method: reached by key, as at run time, and typed per entry
    assert "    items:" not in block_state and "Literal['items']) -> _Items[LinearState]" in block_state
    assert "__getattr__: None" in block_state  # unknown paths are errors
    assert "Literal['linear']" in block_state and "Literal['calls']" in block_state
    deeper_state = ast.unparse(classes["DeeperState"])
    assert "linear: LinearState" in deeper_state and "extra: jax.Array" in deeper_state  # inherited + own
    assert "def __nnx_state__(self) -> _StateOf[Block, BlockState]" in ast.unparse(classes["Block"])
    # a declared field: the value on instances, the cell kind on the class
    assert "w: _Declared[jax.Array, _nnx.Param[jax.Array]]" in ast.unparse(classes["Linear"])
    assert "extra: _Declared[jax.Array, _nnx.BatchStat[jax.Array]]" in ast.unparse(classes["Deeper"])


def test_stub_keeps_the_public_interface_and_drops_bodies(model_file: Path) -> None:
    text = stub_of(model_file)
    assert "def helper(x: int) -> int:\n    ..." in text
    assert "RuntimeError" not in text and "__main__" not in text
    assert "label: str" in text  # attributes set in methods are declared on the class
    assert "linear: Linear" in text


def test_check_reports_missing_stale_and_orphaned_stubs(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stubs"
    assert stubgen.main([str(model_file), "-o", str(out), "--check"]) == 1
    assert "pkg/models.pyi is missing" in capsys.readouterr().err
    assert stubgen.main([str(model_file), "-o", str(out)]) == 0
    assert stubgen.main([str(model_file), "-o", str(out), "--check"]) == 0
    model_file.write_text(MODEL.replace("din: int = nnx.static()", "din: int = nnx.static()\n    b: jax.Array = nnx.param()"))
    assert stubgen.main([str(model_file), "-o", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert "pkg/models.pyi is out of date" in err
    assert 'Linear: field "b" added (jax.Array)' in err  # the model and the field that changed
    stubgen.main([str(model_file), "-o", str(out)])
    assert "b: jax.Array" in (out / "pkg" / "models.pyi").read_text()
    model_file.unlink()
    assert stubgen.main([str(tmp_path / "pkg"), "-o", str(out), "--check"]) == 1
    assert "has no model file any more" in capsys.readouterr().err
    stubgen.main([str(tmp_path / "pkg"), "-o", str(out)])
    assert not (out / "pkg" / "models.pyi").exists()


def test_files_without_modules_get_no_stub(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("def f() -> int:\n    return 1\n")
    assert stubgen.generate([plain]) == {Path("jaxlib/_jax.pyi"): stubgen.JAXLIB_STUB}  # only what strict pyright needs


def test_cli_needs_the_subcommand(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["nnx", "stubgn"])
    assert stubgen.cli() == 2
    assert "usage: nnx stubgen" in capsys.readouterr().err


def test_bad_paths_and_flags_give_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stubgen.main([str(tmp_path / "missing" / "path.py"), "-o", str(tmp_path / "stubs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or folder" in err and "missing/path.py" in err
    broken = tmp_path / "broken.py"
    broken.write_text("class A(:\n")
    assert stubgen.main([str(broken)]) == 2
    assert "broken.py:1" in capsys.readouterr().err
    assert stubgen.main([]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # no paths: one line saying what to give
    with pytest.raises(SystemExit) as exit_info:
        stubgen.main(["--no-such-flag"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "nnx stubgen: error: unrecognized arguments: --no-such-flag (see nnx stubgen --help)\n", err
    assert not (tmp_path / "stubs").exists()  # nothing written


REAL = """
from __future__ import annotations
import dataclasses
from typing import Optional
import jax
import nnx
from pkg.base import Base


def dense(n: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(n, n, rngs=rngs)


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(2, 2, rngs=rngs)


class Model(Base):
    def __init__(self, rngs: nnx.Rngs) -> None:
        super().__init__(rngs)
        self.bn = nnx.BatchNorm(2, rngs=rngs)
        self.blocks = nnx.List([Block(rngs) for _ in range(2)])
        self.heads = {"a": Block(rngs), "b": Block(rngs)}
        self.mixed = (Block(rngs), nnx.Linear(2, 2, rngs=rngs))
        self.sizes = (1, 2)
        self.proj: Optional[nnx.Linear] = None
        shared = Block(rngs)
        self.left = shared
        self.hidden = dense(2, rngs=rngs)
        self.stacked = nnx.vmap(Block, axis_size=2)(rngs)
        self.dtype = jax.numpy.float32

    def __call__(self, x: jax.Array) -> jax.Array:
        self.sow(nnx.Intermediate, "features", x)
        return x


@dataclasses.dataclass
class Config:
    width: int = 4
    name: str = "m"


@nnx.dataclass
class Affine(nnx.Module):
    w: jax.Array = nnx.param()
    scale: float = 1.0
"""

BASE = """
import nnx


class Base(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.embed = nnx.Embed(4, 2, rngs=rngs)
"""


def state_class(text: str, name: str) -> str:
    tree = ast.parse(text)
    return next(ast.unparse(n) for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def test_stubgen_resolves_what_it_did_not_generate(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(REAL)
    (package / "base.py").write_text(BASE)
    stubs = stubgen.generate([package / "models.py", package / "base.py"])
    text = stubs[Path("pkg/models.pyi")]
    model = state_class(text, "ModelState")
    assert "embed: nnx.layer_states.EmbedState" in model  # inherited from a base in another file
    assert "bn: nnx.layer_states.BatchNormState" in model  # a library layer: its shipped State
    assert "blocks: _Items[BlockState]" in model and "heads: _Items[BlockState]" in model  # containers
    assert "mixed: _t.Any" in model  # entries of different classes: not checked below, never static
    assert "proj: nnx.layer_states.LinearState" in model  # Optional submodule
    assert "left: BlockState" in model  # from a local variable
    assert "hidden: nnx.layer_states.LinearState" in model  # a helper function's return annotation
    assert "stacked: _t.Any" in model  # a call stubgen cannot follow: may be state
    assert "features: _t.Any" in model  # sown in a method
    assert "sizes" not in model and "dtype:" not in model  # static
    assert "import nnx.layer_states" in text
    config = state_class(text, "Config")
    assert "width: int = ..." in config and "name: str = ..." in config  # dataclass defaults kept
    affine = state_class(text, "Affine")
    assert "= nnx.param()" in affine and "scale: float = ..." in affine
    assert "@property" in affine  # __nnx_state__ is no constructor parameter


def test_watch_regenerates(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "watched"
    assert stubgen._watch([model_file], out, interval=0.0, rounds=1) == 0
    assert (out / "pkg" / "models.pyi").exists()


def test_library_states_are_up_to_date() -> None:
    assert stubgen.main(["--library", "--check"]) == 0


def test_library_state_classes_hold_what_the_layers_hold_at_run_time() -> None:
    """Each shipped State class lists every state path its layer has at run time (a field
    that exists only with some arguments, like ``bias``, is listed too)."""
    import nnx

    rngs = nnx.Rngs(0)
    layers = [
        nnx.Linear(2, 3, rngs=rngs),
        nnx.BatchNorm(3, rngs=rngs),
        nnx.LayerNorm(3, rngs=rngs),
        nnx.RMSNorm(3, rngs=rngs),
        nnx.GroupNorm(4, num_groups=2, rngs=rngs),
        nnx.Conv(2, 3, (3, 3), rngs=rngs),
        nnx.Embed(4, 3, rngs=rngs),
        nnx.Dropout(0.1, rngs=rngs),
        nnx.MultiHeadAttention(2, 4, rngs=rngs),
        nnx.LoRALinear(2, 3, lora_rank=1, rngs=rngs),
        nnx.LSTMCell(2, 3, rngs=rngs),
        nnx.Sequential(nnx.Linear(2, 2, rngs=rngs)),
        nnx.InstanceNorm(3, rngs=rngs),
        nnx.PReLU(),
        nnx.SimpleCell(2, 3, rngs=rngs),
        nnx.OptimizedLSTMCell(2, 3, rngs=rngs),
        nnx.WeightNorm(nnx.Linear(2, 3, rngs=rngs), rngs=rngs),
        nnx.SpectralNorm(nnx.Linear(2, 3, rngs=rngs), rngs=rngs),
    ]
    declared = stubgen._state_fields_of(stubgen.library_states())
    for layer in layers:
        name = type(layer).__name__
        assert name in declared, name
        top = {path[0] for path in nnx.state(layer).paths}
        assert top <= set(declared[name]), (name, top - set(declared[name]))


def _library_parts() -> dict[tuple[str, str], set[str] | None]:
    """``{(layer, part): field names}`` read off the shipped State classes (None: NoState)."""
    tree = ast.parse(stubgen.library_states())
    classes = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    aliases = {
        a.targets[0].id: a.value.id
        for a in tree.body
        if isinstance(a, ast.Assign) and isinstance(a.targets[0], ast.Name) and isinstance(a.value, ast.Name)
    }
    out: dict[tuple[str, str], set[str] | None] = {}
    for cls in classes.values():
        if not cls.name.endswith("State") or not isinstance(cls.bases[0], ast.Subscript):
            continue
        layer = ast.unparse(cls.bases[0].slice)
        for member in cls.body:
            if isinstance(member, ast.FunctionDef) and member.name.startswith("__nnx_") and member.returns is not None:
                part = member.name[len("__nnx_") : -2]
                target = ast.unparse(member.returns)
                if part in stubgen.PARTS:
                    target = aliases.get(target, target)
                    body = classes[target].body if target in classes else []
                    fields = {ast.unparse(s.target) for s in body if isinstance(s, ast.AnnAssign) and not ast.unparse(s.target).startswith("__")}
                    out[(layer, part)] = None if target == "_NoState" else fields
    return out


def test_library_parts_keep_what_each_filter_keeps_at_run_time() -> None:
    """Each filtered part a shipped State class declares (what pyright types
    ``nnx.state(layer, nnx.Param)`` as) holds every path the filter keeps at run time, and
    a part declared empty (``NoState``, which strict pyright reports) is empty at run time."""
    import nnx

    rngs = nnx.Rngs(0)
    filters = {
        "params": nnx.Param, "batch_stats": nnx.BatchStat, "cache": nnx.Cache, "intermediates": nnx.Intermediate,
        "lora": nnx.LoRAParam,
    }
    layers = [
        nnx.Linear(2, 3, rngs=rngs), nnx.BatchNorm(3, rngs=rngs), nnx.LayerNorm(3, rngs=rngs),
        nnx.Conv(2, 3, (3, 3), rngs=rngs), nnx.Embed(4, 3, rngs=rngs), nnx.Dropout(0.1, rngs=rngs),
        nnx.MultiHeadAttention(2, 4, rngs=rngs, decode=True), nnx.LoRALinear(2, 3, lora_rank=1, rngs=rngs),
        nnx.LSTMCell(2, 3, rngs=rngs), nnx.Sequential(nnx.Linear(2, 2, rngs=rngs), nnx.BatchNorm(2, rngs=rngs)),
        nnx.SpectralNorm(nnx.Linear(2, 3, rngs=rngs), rngs=rngs),
    ]
    mha = layers[6]
    assert isinstance(mha, nnx.MultiHeadAttention)
    mha.init_cache((1, 3, 4))  # the decode cache exists only once made
    declared = _library_parts()
    checked = 0
    for layer in layers:
        name = type(layer).__name__
        for part in stubgen.PARTS:
            selected = _run_time_part(nnx, layer, part, filters)
            fields = declared[(name, part)]
            if fields is None:
                assert not selected, (name, part, selected)
            else:
                assert selected <= fields, (name, part, selected - fields)
            checked += 1
    assert checked == len(layers) * len(stubgen.PARTS)


def _run_time_part(nnx: typing.Any, layer: object, part: str, filters: dict[str, typing.Any]) -> set[str]:
    """The top-level names ``part`` keeps of ``layer`` at run time, through nnx's own filters."""
    if part == "not_params_batch_stats":
        kept = nnx.state(layer, nnx.Not(nnx.Any(nnx.Param, nnx.BatchStat)))
    elif part == "params_not_lora":
        kept = nnx.state(layer, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    elif part.startswith("not_"):
        kept = nnx.state(layer, nnx.Not(filters[part[len("not_") :]]))
    else:
        kept = nnx.state(layer, filters[part])
    return {str(path[0]) for path in kept.paths}


def test_the_filter_aware_overloads_are_the_generated_ones() -> None:
    """The overloads of split/state/pop and nnx.Optimizer that read a State class's parts
    are generated by ``typecheck/overloads.py``; a hand edit (or a new kind added to the
    generator without regenerating) fails here."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "typecheck/overloads.py", "--check"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
