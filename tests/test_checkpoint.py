# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's device/eval_shape APIs and safetensors are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Checkpoints: safetensors files and orbax directories, exact round trips, refusals.

Every refusal is checked to change nothing: the bytes on disk and the values
in the model are compared before and after.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.sharding import Mesh, NamedSharding

import nnx
from nnx.checkpoint import CheckpointError, CheckpointMismatchError


class Count(nnx.Variable[jax.Array]):
    """A user-defined kind, to check kinds other than the built-in ones are recorded."""


class Block(nnx.Module):
    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, dtype: Any = jnp.float32) -> None:
        self.w = nnx.Param(jax.random.normal(rngs.params(), (din, dout)).astype(dtype))
        self.mean = nnx.BatchStat(jax.random.uniform(rngs.params(), (dout,)).astype(jnp.bfloat16))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w.value.astype(x.dtype) + self.mean.value.astype(x.dtype)


class Model(nnx.Module):
    def __init__(self, seed: int, width: int = 4) -> None:
        rngs = nnx.Rngs(seed, dropout=seed + 1)
        self.first = Block(3, width, rngs=rngs)
        self.shared = self.first  # one set of weights, reachable twice
        self.layers = [Block(width, width, rngs=rngs) for _ in range(2)]
        self.calls = Count(jnp.array(seed, dtype=jnp.int32))
        self.rngs = rngs

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.shared(x)
        for layer in self.layers:
            h = jax.nn.relu(layer(h))
        return h + jax.random.normal(self.rngs.dropout(), h.shape) * 0.0


def test_numpy_and_zero_size_leaves_round_trip_exactly(tmp_path: Path) -> None:
    model, other, third = Model(0), Model(1), Model(2)
    for m, v in ((model, 0.1), (other, 7.0), (third, 9.0)):
        setattr(m, "table", np.full((3,), v, dtype=np.float64))  # would narrow to float32 as a jax array
        setattr(m, "nothing", nnx.Param(jnp.zeros((0, 3))))
    nnx.checkpoint.restore(nnx.checkpoint.save(tmp_path / "m.safetensors", model), other)
    nnx.checkpoint.restore_orbax(nnx.checkpoint.save_orbax(tmp_path / "orbax", model), third)
    for restored in (other, third):
        table = getattr(restored, "table")
        assert isinstance(table, np.ndarray) and table.dtype == np.float64 and (table == 0.1).all()
        assert_same_state(nnx.state(model), nnx.state(restored))


def _host(value: Any) -> np.ndarray[Any, Any]:
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(value))
    return np.asarray(value)


def assert_same_state(a: nnx.State[Any], b: nnx.State[Any]) -> None:
    assert a.paths == b.paths
    for path, x, y in zip(a.paths, a.leaves, b.leaves):
        assert a.kind(path) is b.kind(path), path
        assert x.dtype == y.dtype, (path, x.dtype, y.dtype)
        assert np.array_equal(_host(x), _host(y)), path


def snapshot(model: Any) -> list[np.ndarray[Any, Any]]:
    return [_host(v).copy() for v in nnx.state(model).leaves]


def unchanged(model: Any, before: list[np.ndarray[Any, Any]]) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, snapshot(model)))


def abstract_model(seed: int = 0) -> Model:
    graphdef, abstract = jax.eval_shape(lambda: nnx.split(Model(seed)))
    model: Model = nnx.merge(graphdef, abstract)
    return model


# -- safetensors -------------------------------------------------------------------------


def test_safetensors_round_trip_into_an_existing_model(tmp_path: Path) -> None:
    model = Model(0)
    model.rngs.dropout()  # advance a stream: the count must come back too
    file = nnx.checkpoint.save(tmp_path / "model.safetensors", model)
    other = Model(1)
    restored = nnx.checkpoint.restore(file, other)
    assert restored is other
    assert_same_state(nnx.state(model), nnx.state(other))
    assert other.first is other.shared  # sharing survives (the model's own structure)
    # The RNG streams continue identically.
    assert np.array_equal(jax.random.key_data(model.rngs.dropout()), jax.random.key_data(other.rngs.dropout()))
    x = jnp.ones((2, 3))
    assert np.array_equal(model(x), other(x))


def test_safetensors_file_is_keyed_by_dotted_paths_with_kinds(tmp_path: Path) -> None:
    from safetensors import safe_open

    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    with safe_open(str(file), framework="numpy") as f:
        names = set(f.keys())
        meta = f.metadata()
    assert {"first.w", "layers.0.w", "layers.1.mean", "calls", "rngs.dropout.key"} <= names
    assert "shared.w" not in names  # shared cells are stored once
    assert "test_checkpoint.Count" in meta["nnx"] and "nnx.variables.BatchStat" in meta["nnx"]


def test_load_gives_a_state_with_kinds(tmp_path: Path) -> None:
    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    loaded = nnx.checkpoint.load(file)
    assert_same_state(nnx.state(model), loaded)
    assert loaded.kind(("calls",)) is Count


def test_restore_into_an_abstract_model(tmp_path: Path) -> None:
    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    target = abstract_model(seed=5)
    assert isinstance(target.first.w.value, jax.ShapeDtypeStruct)
    nnx.checkpoint.restore(file, target)
    assert_same_state(nnx.state(model), nnx.state(target))
    assert np.array_equal(model(jnp.ones((1, 3))), target(jnp.ones((1, 3))))


def test_restore_into_a_model_from_nnx_eval_shape(tmp_path: Path) -> None:
    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    directory = nnx.checkpoint.save_orbax(tmp_path / "orbax", model)
    for backend in ("safetensors", "orbax"):
        target = nnx.eval_shape(lambda: Model(9))
        assert isinstance(target.first.w.value, jax.ShapeDtypeStruct)
        if backend == "safetensors":
            restored = nnx.checkpoint.restore(file, target)
        else:
            restored = nnx.checkpoint.restore_orbax(directory, target)
        assert_same_state(nnx.state(model), nnx.state(restored))


def test_restore_into_a_state_returns_a_new_state(tmp_path: Path) -> None:
    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    target = nnx.state(Model(1), nnx.Param)
    before = [np.asarray(v) for v in target.leaves]
    restored = nnx.checkpoint.restore(file, target, nnx.Param)
    assert_same_state(nnx.state(model, nnx.Param), restored)
    assert all(np.array_equal(a, b) for a, b in zip(before, target.leaves))  # the target State is untouched


def test_partial_restore_by_filter(tmp_path: Path) -> None:
    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    other = Model(1)
    stats_before = nnx.state(other, nnx.BatchStat)
    nnx.checkpoint.restore(file, other, nnx.Param)
    assert_same_state(nnx.state(model, nnx.Param), nnx.state(other, nnx.Param))
    assert_same_state(stats_before, nnx.state(other, nnx.BatchStat))  # not restored
    # A params-only file restores params; restoring everything from it names what is missing.
    params_file = nnx.checkpoint.save(tmp_path / "params.safetensors", model, nnx.Param)
    nnx.checkpoint.restore(params_file, Model(2), nnx.Param)
    with pytest.raises(CheckpointMismatchError, match=r"missing from the checkpoint .*first\.mean") as info:
        nnx.checkpoint.restore(params_file, Model(2))
    assert "calls" in info.value.missing and not info.value.unexpected


def test_save_overwrites_atomically_and_keeps_the_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    old = file.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        nnx.checkpoint.save(file, Model(1))
    assert file.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left behind
    monkeypatch.undo()
    nnx.checkpoint.save(file, Model(1))
    assert file.read_bytes() != old


def test_mismatched_model_is_refused_with_every_difference_and_nothing_changes(tmp_path: Path) -> None:
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    on_disk = file.read_bytes()
    target = Model(1, width=5)  # every width-dependent shape differs
    setattr(target, "extra", nnx.Param(jnp.ones(2)))  # missing from the checkpoint
    del target.layers[1]  # unexpected in the checkpoint
    setattr(target, "calls", nnx.Param(jnp.array(0, dtype=jnp.int32)))  # a different kind
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError) as info:
        nnx.checkpoint.restore(file, target)
    err = info.value
    assert err.missing == ["extra"]
    assert sorted(err.unexpected) == ["layers.1.mean", "layers.1.w"]
    mismatched = "\n".join(err.mismatched)
    assert "first.w: shape (3, 5) (target) vs (3, 4) (checkpoint)" in mismatched
    assert "calls: kind nnx.variables.Param (target) vs test_checkpoint.Count (checkpoint)" in mismatched
    assert "nothing was restored" in str(err)
    assert unchanged(target, before)
    assert file.read_bytes() == on_disk


def test_dtype_mismatch_is_refused(tmp_path: Path) -> None:
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    target = Model(1)
    target.first.w.value = target.first.w.value.astype(jnp.float16)
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError, match=r"first\.w: dtype float16 \(target\) vs float32"):
        nnx.checkpoint.restore(file, target)
    assert unchanged(target, before)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    data = file.read_bytes()
    target = Model(1)
    before = snapshot(target)
    for cut in (3, 100, len(data) - 5):
        file.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated or corrupted"):
            nnx.checkpoint.restore(file, target)
    assert unchanged(target, before)


def test_corrupted_bytes_are_refused(tmp_path: Path) -> None:
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    data = bytearray(file.read_bytes())
    data[-3] ^= 0xFF  # flip a byte of the last tensor
    file.write_bytes(bytes(data))
    target = Model(1)
    before = snapshot(target)
    with pytest.raises(CheckpointError, match="checksum"):
        nnx.checkpoint.restore(file, target)
    with pytest.raises(CheckpointError, match="checksum"):
        nnx.checkpoint.load(file)
    assert unchanged(target, before)


def test_foreign_or_missing_files_are_refused(tmp_path: Path) -> None:
    import safetensors.numpy

    foreign = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(foreign))
    with pytest.raises(CheckpointError, match="not an nnx checkpoint"):
        nnx.checkpoint.load(foreign)
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        nnx.checkpoint.restore(tmp_path / "absent.safetensors", Model(0))


def test_saving_what_cannot_be_saved_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="abstract"):
        nnx.checkpoint.save(tmp_path / "a.safetensors", abstract_model())
    model = Model(0)
    setattr(model, "z", nnx.Param(jnp.ones(2, dtype=jnp.complex64)))
    with pytest.raises(TypeError, match="'z' has dtype complex64"):
        nnx.checkpoint.save(tmp_path / "c.safetensors", model)
    with pytest.raises(TypeError, match="module or an nnx.State"):
        nnx.checkpoint.save(tmp_path / "d.safetensors", {"w": jnp.ones(2)})
    assert list(tmp_path.iterdir()) == []


# -- orbax ------------------------------------------------------------------------------


def test_orbax_round_trip_with_keys_and_sharing(tmp_path: Path) -> None:
    model = Model(0)
    model.rngs.params()
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    other = Model(1)
    nnx.checkpoint.restore_orbax(path, other)
    assert_same_state(nnx.state(model), nnx.state(other))
    assert other.first is other.shared


def test_orbax_restores_onto_an_abstract_state_with_shardings(tmp_path: Path) -> None:
    model = Model(0)
    nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    graphdef, sharded = nnx.split(nnx.abstract_sharded(lambda: Model(3), mesh))
    restored = nnx.checkpoint.restore_orbax(tmp_path / "ckpt", sharded)
    assert_same_state(nnx.state(model), restored)
    assert all(isinstance(v.sharding, NamedSharding) and v.sharding.mesh == mesh for v in restored.leaves)
    rebuilt = nnx.merge(graphdef, restored)
    assert np.array_equal(model(jnp.ones((1, 3))), rebuilt(jnp.ones((1, 3))))


def test_orbax_mismatch_and_damage_are_refused(tmp_path: Path) -> None:
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Model(0))
    target = Model(1, width=5)
    setattr(target, "extra", nnx.Param(jnp.ones(2)))
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError) as info:
        nnx.checkpoint.restore_orbax(path, target)
    assert info.value.missing == ["extra"]
    assert any(m.startswith("first.w: shape (3, 5)") for m in info.value.mismatched)
    assert unchanged(target, before)
    # An existing directory is not overwritten without force=True.
    listing = sorted(p.name for p in path.rglob("*"))
    with pytest.raises(FileExistsError, match="force=True"):
        nnx.checkpoint.save_orbax(path, Model(2))
    assert sorted(p.name for p in path.rglob("*")) == listing
    # A directory that lost its metadata is reported as damaged.
    for meta in path.glob("_*METADATA"):
        meta.unlink()
    with pytest.raises(CheckpointError, match="incomplete or corrupted"):
        nnx.checkpoint.restore_orbax(path, Model(1))
    with pytest.raises(FileNotFoundError):
        nnx.checkpoint.restore_orbax(tmp_path / "absent", Model(1))


def test_orbax_records_kinds_and_refuses_corrupted_chunks(tmp_path: Path) -> None:
    model = Model(0)
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    target = Model(1)
    setattr(target, "calls", nnx.Param(jnp.array(0, dtype=jnp.int32)))  # a different kind
    before = snapshot(target)
    with pytest.raises(CheckpointMismatchError, match=r"calls: kind nnx.variables.Param \(target\) vs test_checkpoint.Count"):
        nnx.checkpoint.restore_orbax(path, target)
    assert unchanged(target, before)
    # Flip bytes inside the data chunk of a large array: orbax reads it without complaint,
    # the checksums do not.
    wide = Leaf((64, 64), jnp.float32, 0)
    path = nnx.checkpoint.save_orbax(tmp_path / "wide", wide)
    chunk = max((f for f in path.rglob("d/*") if f.is_file()), key=lambda f: f.stat().st_size)
    data = bytearray(chunk.read_bytes())
    for i in range(100, 200):
        data[i] ^= 0xFF
    chunk.write_bytes(bytes(data))
    target_leaf = Leaf((64, 64), jnp.float32, 1)
    before = snapshot(target_leaf)
    with pytest.raises(CheckpointError, match="'value' read from .* fail their checksum"):
        nnx.checkpoint.restore_orbax(path, target_leaf)
    assert unchanged(target_leaf, before)


def _rewrite_custom_metadata(path: Path, change: Any) -> None:
    """Edit the nnx records orbax keeps in a checkpoint's _CHECKPOINT_METADATA (JSON)."""
    import json

    meta_file = path / "_CHECKPOINT_METADATA"
    meta = json.loads(meta_file.read_text())
    change(meta["custom_metadata"]["nnx"])
    meta_file.write_text(json.dumps(meta))


def test_orbax_checkpoints_of_format_1_with_crc32_still_restore_and_verify(tmp_path: Path) -> None:
    # nnx before the shard-wise digest recorded a CRC-32 of each whole leaf ("nnx.orbax/1").
    import zlib

    model = Model(0)
    path = nnx.checkpoint.save_orbax(tmp_path / "old", model)
    by_path = {tuple(str(k) for k in p): _host(v) for p, v in zip(nnx.state(model).paths, nnx.state(model).leaves)}

    def as_format_1(nnx_meta: dict[str, Any]) -> None:
        nnx_meta["format"] = "nnx.orbax/1"
        for leaf in nnx_meta["leaves"]:
            leaf[2] = zlib.crc32(np.ascontiguousarray(by_path[tuple(leaf[0])]).tobytes())

    _rewrite_custom_metadata(path, as_format_1)
    restored = nnx.checkpoint.restore_orbax(path, Model(1))
    assert_same_state(nnx.state(model), nnx.state(restored))

    def break_one(nnx_meta: dict[str, Any]) -> None:
        nnx_meta["leaves"][0][2] ^= 1

    _rewrite_custom_metadata(path, break_one)
    target = Model(1)
    before = snapshot(target)
    with pytest.raises(CheckpointError, match="fail their checksum"):
        nnx.checkpoint.restore_orbax(path, target)
    assert unchanged(target, before)


def test_orbax_refuses_a_checkpoint_whose_digest_was_altered(tmp_path: Path) -> None:
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Model(0))

    def alter(nnx_meta: dict[str, Any]) -> None:
        assert nnx_meta["format"] == "nnx.orbax/2"
        nnx_meta["leaves"][-1][2] = (nnx_meta["leaves"][-1][2] + 1) % 2**64

    _rewrite_custom_metadata(path, alter)
    target = Model(1)
    before = snapshot(target)
    with pytest.raises(CheckpointError, match="fail their checksum"):
        nnx.checkpoint.restore_orbax(path, target)
    assert unchanged(target, before)


_DIGEST_DTYPES = [np.float32, np.float64, np.int8, np.uint16, np.bool_, np.complex128, jnp.bfloat16]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple),
    dtype=st.sampled_from(_DIGEST_DTYPES),
    data=st.data(),
)
def test_digest_is_the_same_however_the_array_is_cut_and_sees_every_word(shape: tuple[int, ...], dtype: Any, data: st.DataObject) -> None:
    from nnx.checkpoint.digest import block_digest

    rng = np.random.default_rng(len(shape))
    whole = (rng.normal(size=shape) * 50).astype(dtype)
    everything = tuple(slice(None) for _ in shape)
    expected = block_digest(whole, everything, shape)
    # Cut every axis at random points: the blocks' digests add up to the whole one.
    cuts = [sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=2)) if n > 1 else [])) for n in shape]
    bounds = [list(zip([0, *c], [*c, n])) for c, n in zip(cuts, shape)]
    total = 0
    for corner in np.ndindex(*[len(b) for b in bounds]):
        index = tuple(slice(*bounds[a][i]) for a, i in enumerate(corner))
        total += block_digest(whole[index], index, shape)
    assert total % 2**64 == expected
    # Any change to one byte changes the digest (the mix is a bijection of each word).
    raw = bytearray(np.ascontiguousarray(whole).tobytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= 1 << data.draw(st.integers(0, 7))
    changed = np.frombuffer(bytes(raw), dtype=whole.dtype).reshape(shape)
    assert block_digest(changed, everything, shape) != expected


def test_orbax_partial_restore_judges_by_recorded_kinds(tmp_path: Path) -> None:
    model = Model(0)
    params_only = nnx.checkpoint.save_orbax(tmp_path / "params", model, nnx.Param)
    full = nnx.checkpoint.save_orbax(tmp_path / "full", model)
    other = Model(1)
    nnx.checkpoint.restore_orbax(full, other, nnx.BatchStat)  # the file's params are not "unexpected"
    assert_same_state(nnx.state(model, nnx.BatchStat), nnx.state(other, nnx.BatchStat))
    assert not np.array_equal(_host(model.first.w.value), _host(other.first.w.value))
    with pytest.raises(CheckpointMismatchError) as info:
        nnx.checkpoint.restore_orbax(params_only, Model(2))
    assert "calls" in info.value.missing and "first.mean" in info.value.missing
    assert not info.value.unexpected


def test_plain_orbax_checkpoints_restore_by_shape_and_dtype(tmp_path: Path) -> None:
    import orbax.checkpoint as ocp  # pyright: ignore[reportMissingTypeStubs]  # orbax ships no stubs

    model = Model(0)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(tmp_path / "plain", nnx.checkpoint.to_orbax(nnx.state(model)))
    checkpointer.wait_until_finished()
    other = nnx.checkpoint.restore_orbax(tmp_path / "plain", Model(1))
    assert_same_state(nnx.state(model), nnx.state(other))
    restored = nnx.checkpoint.from_orbax(
        checkpointer.restore(tmp_path / "plain", nnx.checkpoint.to_orbax(nnx.state(Model(2)))), nnx.state(Model(3))
    )
    assert_same_state(nnx.state(model), restored)


def test_checkpoint_manager_keeps_the_last_n_steps(tmp_path: Path) -> None:
    model = Model(0)
    saved: dict[int, nnx.State[Model]] = {}
    with nnx.checkpoint.CheckpointManager(tmp_path / "run", max_to_keep=2) as manager:
        for step in range(5):
            model.calls.value = jnp.array(step, dtype=jnp.int32)
            model.first.w.value = model.first.w.value + 1.0
            model.rngs.dropout()
            manager.save(step, model)
            saved[step] = nnx.state(model)  # arrays are immutable: a snapshot
        assert manager.all_steps() == [3, 4]
        assert manager.latest_step() == 4
        latest = manager.restore(Model(7))
        assert_same_state(saved[4], nnx.state(latest))
        older = manager.restore(abstract_model(), step=3)
        assert_same_state(saved[3], nnx.state(older))
        partial = manager.restore(Model(7), nnx.Param, step=3)
        assert_same_state(saved[3].filter(nnx.Param), nnx.state(partial, nnx.Param))
        with pytest.raises(FileNotFoundError, match="no step 0"):
            manager.restore(Model(7), step=0)
    with nnx.checkpoint.CheckpointManager(tmp_path / "empty") as manager:
        with pytest.raises(FileNotFoundError, match="no checkpoints yet"):
            manager.restore(Model(7))


# -- restarts, failed and concurrent saves, leftovers ------------------------------------


def test_a_restarted_manager_restores_every_kept_step(tmp_path: Path) -> None:
    model = Model(0)
    saved: dict[int, nnx.State[Model]] = {}
    with nnx.checkpoint.CheckpointManager(tmp_path / "run", max_to_keep=3) as manager:
        for step in range(5):
            model.first.w.value = model.first.w.value + 1.0
            manager.save(step, model)
            saved[step] = nnx.state(model)
    # A new manager over the same directory: what a job does after a restart.
    with nnx.checkpoint.CheckpointManager(tmp_path / "run", max_to_keep=3) as manager:
        assert manager.all_steps() == [2, 3, 4]
        for step in manager.all_steps():
            assert_same_state(saved[step], nnx.state(manager.restore(Model(7), step=step)))
        assert_same_state(saved[4], nnx.state(manager.restore(abstract_model())))
        manager.save(5, Model(5))  # and it carries on saving, keeping the last three
        assert manager.all_steps() == [3, 4, 5]


def _fail_orbax_directory_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make orbax's save fail the way a read-only directory does (we may be root here)."""
    from orbax.checkpoint._src.path import async_path  # pyright: ignore[reportMissingTypeStubs]

    async def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("[Errno 13] Permission denied (injected)")

    monkeypatch.setattr(async_path, "mkdir", refused)


def test_a_failed_forced_orbax_save_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = Model(0)
    path = nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    _fail_orbax_directory_creation(monkeypatch)
    with pytest.raises(PermissionError, match="injected"):
        nnx.checkpoint.save_orbax(path, Model(1), force=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no scratch, no lock left
    assert_same_state(nnx.state(model), nnx.state(nnx.checkpoint.restore_orbax(path, Model(2))))
    nnx.checkpoint.save_orbax(path, Model(1), force=True)  # the path is free again
    assert_same_state(nnx.state(Model(1)), nnx.state(nnx.checkpoint.restore_orbax(path, Model(2))))


def test_a_second_writer_of_a_path_gets_a_checkpoint_error_and_changes_nothing(tmp_path: Path) -> None:
    from nnx.checkpoint.atomic import claim

    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    directory = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Model(0))
    old = file.read_bytes()
    for path, save in (
        (file, lambda: nnx.checkpoint.save(file, Model(1))),
        (directory, lambda: nnx.checkpoint.save_orbax(directory, Model(1), force=True)),
        (tmp_path / "run", lambda: nnx.checkpoint.CheckpointManager(tmp_path / "run").save(0, Model(1))),
    ):
        with claim(path, "another writer"):  # flock: a second open file conflicts even in one process
            with pytest.raises(CheckpointError, match="another process is saving"):
                save()
    assert file.read_bytes() == old
    assert_same_state(nnx.state(Model(0)), nnx.state(nnx.checkpoint.restore_orbax(directory, Model(2))))
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").iterdir())


def test_leftovers_of_killed_saves_are_removed_by_the_next_save_or_restore(tmp_path: Path) -> None:
    from nnx.checkpoint.atomic import claim

    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    directory = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Model(0))
    with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
        manager.save(0, Model(0))
    # What kill -9 leaves: a scratch file, a scratch directory, an unfinished orbax step.
    leftovers = [
        tmp_path / ".m.safetensors.nnx-tmp-0123456789abcdef",
        tmp_path / ".ckpt.nnx-new-0123456789abcdef.orbax-checkpoint-tmp-17",
        tmp_path / "run" / "1.orbax-checkpoint-tmp-17",
    ]
    others = [tmp_path / ".m.safetensors.tmp", tmp_path / "run" / "notes.txt"]  # not ours: kept
    def litter() -> None:
        for p in leftovers[:1] + others:
            p.write_bytes(b"x")
        for p in leftovers[1:]:
            p.mkdir(exist_ok=True)
            (p / "chunk").write_bytes(b"x")

    litter()
    with claim(file, "a save in progress"), claim(directory, "a save in progress"), claim(tmp_path / "run", "a save"):
        nnx.checkpoint.restore(file, Model(1))  # a writer is at work: its scratch is not touched
        nnx.checkpoint.restore_orbax(directory, Model(1))
        with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
            manager.restore(Model(1))
        assert all(p.exists() for p in leftovers)
    nnx.checkpoint.restore(file, Model(1))
    nnx.checkpoint.restore_orbax(directory, Model(1))
    with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
        manager.restore(Model(1))
        assert manager.all_steps() == [0]
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in others)
    litter()
    nnx.checkpoint.save(file, Model(2))
    nnx.checkpoint.save_orbax(directory, Model(2), force=True)
    with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
        manager.save(1, Model(2))
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in others)


def test_a_reader_that_may_not_write_the_directory_still_restores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nnx.checkpoint import atomic

    model = Model(0)
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    directory = nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
        manager.save(0, model)
    leftover = tmp_path / ".m.safetensors.nnx-tmp-0123456789abcdef"
    leftover.write_bytes(b"x")

    def no_lock_file(file: Path) -> int | None:
        raise PermissionError(13, "Permission denied", str(file))  # a read-only directory (we may be root)

    monkeypatch.setattr(atomic, "_try_lock", no_lock_file)
    assert_same_state(nnx.state(model), nnx.state(nnx.checkpoint.restore(file, Model(1))))
    assert_same_state(nnx.state(model), nnx.state(nnx.checkpoint.restore_orbax(directory, Model(1))))
    with nnx.checkpoint.CheckpointManager(tmp_path / "run") as manager:
        assert_same_state(nnx.state(model), nnx.state(manager.restore(Model(1))))
    assert leftover.exists()  # left for a process that may write there
    with pytest.raises(PermissionError):
        nnx.checkpoint.save(file, Model(1))


def test_a_swap_cut_short_puts_the_old_checkpoint_back(tmp_path: Path) -> None:
    model = Model(0)
    directory = nnx.checkpoint.save_orbax(tmp_path / "ckpt", model)
    # A writer killed between moving the old directory aside and moving the new one in.
    aside = tmp_path / ".ckpt.nnx-old-00000000000000aa"
    os.replace(directory, aside)
    nnx.checkpoint.save_orbax(tmp_path / ".ckpt.nnx-new-00000000000000aa", Model(1))
    restored = nnx.checkpoint.restore_orbax(directory, Model(2))
    assert_same_state(nnx.state(model), nnx.state(restored))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_plain_array_attributes_of_an_nnx_eval_shape_model_are_state(tmp_path: Path) -> None:
    """``nnx.eval_shape`` keeps plain array attributes as ShapeDtypeStructs of their exact
    dtype (they used to become static), so a checkpoint restores into them."""

    def build() -> Model:
        model = Model(0)
        setattr(model, "np64", np.linspace(0.0, 1.0, 3))  # float64: JAX would narrow it
        setattr(model, "npi64", np.arange(4, dtype=np.int64))
        setattr(model, "jx", jnp.arange(2.0))
        return model

    abstract = nnx.eval_shape(build)
    np64, jx = getattr(abstract, "np64"), getattr(abstract, "jx")
    assert isinstance(np64, jax.ShapeDtypeStruct) and (np64.shape, np64.dtype) == ((3,), np.float64)
    assert isinstance(jx, jax.ShapeDtypeStruct) and (jx.shape, jx.dtype) == ((2,), jnp.float32)
    assert {("np64",), ("npi64",), ("jx",)} <= set(nnx.state(abstract).paths)
    model = build()
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", model)
    directory = nnx.checkpoint.save_orbax(tmp_path / "orbax", model)
    for backend in ("safetensors", "orbax"):
        target = nnx.eval_shape(build)
        if backend == "safetensors":
            restored = nnx.checkpoint.restore(file, target)
        else:
            restored = nnx.checkpoint.restore_orbax(directory, target)
        assert_same_state(nnx.state(model), nnx.state(restored))
        assert isinstance(getattr(restored, "np64"), np.ndarray)


def _header_span(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 1.0, exclude_max=True), byte=st.integers(0, 255))
def test_a_damaged_safetensors_header_is_a_checkpoint_error(tmp_path: Path, where: float, byte: int) -> None:
    """Any one byte of the header (length prefix, JSON, nnx metadata) replaced: the
    restore gives the saved state exactly or raises a CheckpointError, nothing else."""
    model = Model(0)
    file = tmp_path / "m.safetensors"
    data = bytearray(_good_file(file, model))
    at = int(where * _header_span(bytes(data)))
    data[at] = byte
    file.write_bytes(bytes(data))
    target = Model(1)
    before = snapshot(target)
    try:
        nnx.checkpoint.restore(file, target)
    except CheckpointError:
        assert unchanged(target, before)
    else:
        assert_same_state(nnx.state(model), nnx.state(target))
    try:
        nnx.checkpoint.load(file)
    except CheckpointError:
        pass


_GOOD: dict[str, bytes] = {}


def _good_file(file: Path, model: Model) -> bytes:
    if "data" not in _GOOD:
        _GOOD["data"] = nnx.checkpoint.save(file, model).read_bytes()
    return _GOOD["data"]


def test_malformed_nnx_metadata_is_a_checkpoint_error(tmp_path: Path) -> None:
    import json

    file = nnx.checkpoint.save(tmp_path / "m.safetensors", Model(0))
    data = file.read_bytes()
    header = json.loads(data[8 : _header_span(data)])
    entries = json.loads(header["__metadata__"]["nnx"])
    broken_entries = [
        {name: {k: v for k, v in e.items() if k != "crc32"} for name, e in entries.items()},
        {name: {**e, "path": [["nested"]]} for name, e in entries.items()},
        {name: {**e, "key_impl": "no-such-impl"} if "key_impl" in e else e for name, e in entries.items()},
        [1, 2],
    ]
    for broken in broken_entries:
        meta = {**header["__metadata__"], "nnx": json.dumps(broken)}
        body = json.dumps({**header, "__metadata__": meta}).encode()
        file.write_bytes(len(body).to_bytes(8, "little") + body + data[_header_span(data) :])
        with pytest.raises(CheckpointError, match="corrupted"):
            nnx.checkpoint.restore(file, Model(1))
    # orbax: the nnx part of _CHECKPOINT_METADATA without its leaf records.
    directory = nnx.checkpoint.save_orbax(tmp_path / "ckpt", Model(0))
    meta_file = directory / "_CHECKPOINT_METADATA"
    meta = json.loads(meta_file.read_text())
    custom = meta["custom_metadata"]
    for bad in ({**custom["nnx"], "leaves": None}, {k: v for k, v in custom["nnx"].items() if k != "leaves"}, [[1]]):
        meta["custom_metadata"] = {**custom, "nnx": bad}
        meta_file.write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match="nnx metadata"):
            nnx.checkpoint.restore_orbax(directory, Model(1))


# -- property: random models round-trip exactly through both back ends -------------------


class Leaf(nnx.Module):
    def __init__(self, shape: tuple[int, ...], dtype: Any, seed: int) -> None:
        key = jax.random.key(seed)
        if jnp.issubdtype(dtype, jnp.integer):
            self.value = nnx.Param(jax.random.randint(key, shape, -100, 100, dtype=dtype))
        else:
            self.value = nnx.Param(jax.random.normal(key, shape).astype(dtype))
        self.stat = nnx.BatchStat(jnp.full(shape[-1:], seed, dtype=jnp.float32))


class Tree(nnx.Module):
    def __init__(self, spec: dict[str, Any], seed: int) -> None:
        self.rngs = nnx.Rngs(seed, noise=seed + 7)
        self.leaves = [Leaf(shape, dtype, seed + i) for i, (shape, dtype) in enumerate(spec["leaves"])]
        if spec["share"] is not None:
            self.alias = self.leaves[spec["share"] % len(self.leaves)]
        self.rngs_alias = self.rngs
        self.counter = Count(jnp.array(seed, dtype=jnp.uint32))
        self.buffer = np.linspace(0, seed, 5, dtype=np.float64)  # a plain NumPy attribute, 64-bit
        for _ in range(spec["draws"]):
            self.rngs.noise()


specs = st.fixed_dictionaries(
    {
        "leaves": st.lists(
            st.tuples(
                st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),  # 0: zero-size arrays
                st.sampled_from([jnp.float32, jnp.bfloat16, jnp.int32, jnp.float16]),
            ),
            min_size=1,
            max_size=4,
        ),
        "share": st.none() | st.integers(0, 3),
        "draws": st.integers(0, 3),
    }
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs, seeds=st.tuples(st.integers(0, 1000), st.integers(1001, 2000)))
def test_random_models_round_trip_exactly_through_safetensors(tmp_path: Path, spec: dict[str, Any], seeds: tuple[int, int]) -> None:
    model, other = Tree(spec, seeds[0]), Tree(spec, seeds[1])
    file = nnx.checkpoint.save(tmp_path / "tree.safetensors", model)
    nnx.checkpoint.restore(file, other)
    assert_same_state(nnx.state(model), nnx.state(other))
    assert_same_state(nnx.state(model), nnx.checkpoint.load(file))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs, seeds=st.tuples(st.integers(0, 1000), st.integers(1001, 2000)))
def test_random_models_round_trip_exactly_through_orbax(tmp_path: Path, spec: dict[str, Any], seeds: tuple[int, int]) -> None:
    model, other = Tree(spec, seeds[0]), Tree(spec, seeds[1])
    path = nnx.checkpoint.save_orbax(tmp_path / "tree", model, force=True)
    nnx.checkpoint.restore_orbax(path, other)
    assert_same_state(nnx.state(model), nnx.state(other))
