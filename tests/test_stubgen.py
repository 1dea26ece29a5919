"""nnx.stubgen: what the stubs declare, --check, and that it never imports the model."""

import ast
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
    assert list(stubs) == [Path("pkg/models.pyi")]  # named by the import path
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
    assert "linear: LinearState" in block_state and "calls: _t.Any" in block_state and "items: _t.Any" in block_state
    assert "__getattr__: None" in block_state  # unknown paths are errors
    assert "Literal['linear']" in block_state and "Literal['calls']" in block_state
    deeper_state = ast.unparse(classes["DeeperState"])
    assert "linear: LinearState" in deeper_state and "extra: jax.Array" in deeper_state  # inherited + own
    assert "__nnx_state__: BlockState" in ast.unparse(classes["Block"])
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
    assert "pkg/models.pyi is out of date" in capsys.readouterr().err
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
    assert stubgen.generate([plain]) == {}


def test_cli_needs_the_subcommand(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["nnx", "stubgn"])
    assert stubgen.cli() == 2
    assert "usage: nnx stubgen" in capsys.readouterr().err
