"""Editor completion through the generated stubs: ``pyright-langserver --stdio`` is asked
to complete ``state.block.`` in a file that imports ``typecheck.models``, and answers
with the fields of Block that the stub declares."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = """import nnx
from typecheck.models import Model

model = Model(rngs=nnx.Rngs(0))
state = nnx.state(model)
state.block.
"""


def langserver() -> str:
    found = Path(sys.executable).parent / "pyright-langserver"
    if found.exists():
        return str(found)
    on_path = shutil.which("pyright-langserver")
    if on_path is None:
        pytest.fail("pyright-langserver is not installed (install it with pip install -e '.[dev]')")
    return on_path


class Client:
    """Just enough of the Language Server Protocol: framed JSON-RPC over stdio."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while (line := self.proc.stdout.readline().strip()) != b"":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(self.proc.stdout.read(length))
        return message

    def request(self, method: str, params: dict[str, Any], timeout: float = 120.0) -> Any:
        self.next_id += 1
        wanted = self.next_id
        self.send({"id": wanted, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive()
            if message.get("id") == wanted and "method" not in message:
                return message.get("result")
            if "method" in message and "id" in message:  # a request from the server
                self.send({"id": message["id"], "result": self._answer(message)})
        raise TimeoutError(method)

    @staticmethod
    def _answer(message: dict[str, Any]) -> Any:
        if message["method"] == "workspace/configuration":
            return [None for _ in message["params"]["items"]]
        return None

    def close(self) -> None:
        try:
            self.request("shutdown", {}, timeout=10.0)
            self.send({"method": "exit"})
        finally:
            self.proc.kill()
            self.proc.wait()


def complete(source: str) -> set[str]:
    """The labels pyright-langserver offers at the end of ``source``'s last line."""
    client = Client([langserver(), "--stdio"])
    try:
        root = ROOT.as_uri()
        client.request(
            "initialize",
            {
                "processId": None,
                "rootUri": root,
                "workspaceFolders": [{"uri": root, "name": "nnx"}],
                "capabilities": {"textDocument": {"completion": {"completionItem": {"snippetSupport": False}}}},
            },
        )
        client.send({"method": "initialized", "params": {}})
        uri = (ROOT / "typecheck" / "completion_probe.py").as_uri()  # never written to disk
        client.send(
            {
                "method": "textDocument/didOpen",
                "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": source}},
            }
        )
        last = source.splitlines()[-1]
        result = client.request(
            "textDocument/completion",
            {"textDocument": {"uri": uri}, "position": {"line": len(source.splitlines()) - 1, "character": len(last)}},
        )
    finally:
        client.close()
    # the answer is a CompletionList or a bare list of items
    items = cast(list[dict[str, Any]], result["items"] if isinstance(result, dict) else result)
    return {str(item["label"]) for item in items}


def state_members() -> set[str]:
    """What every State offers besides its fields: its public methods and properties."""
    import nnx

    return {name for name in dir(nnx.State) if not name.startswith("_")}


def test_state_path_completes_to_the_declared_fields() -> None:
    labels = complete(SOURCE)
    assert {"linear", "bn", "calls"} <= labels  # Block's state fields, from the stub
    assert "momentum" not in labels and "blok" not in labels


REAL = """import nnx
from typecheck.real.models import Tower

state = nnx.state(Tower(rngs=nnx.Rngs(0)))
state."""


def test_completion_on_a_real_model_lists_exactly_its_state_fields() -> None:
    """A model holding nnx.Linear, nnx.BatchNorm, an nnx.List of blocks and two fields it
    inherits from a base class in another file: completion offers those five, and nothing
    but State's own members besides (no static attribute, no typo)."""
    def fields(source: str) -> set[str]:
        return {label for label in complete(source) if not label.startswith("_")} - state_members()

    assert fields(REAL) == {"embed", "norm", "linear", "bn", "blocks"}
    assert fields(REAL + "bn.") == {"scale", "bias", "mean", "var"}  # a library layer's shipped State
    assert fields(REAL + "blocks[0].") == {"ln", "attn", "mlp"}  # an entry of the nnx.List
