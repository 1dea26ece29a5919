# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's jit/device/sharding/tree APIs and optax, scikit-learn are partly unannotated;
# mypy --strict checks this file fully, and so do pyright's other rules.)
"""Sharded initialisation, data- and tensor-parallel training, sharded restores: 8 CPU devices.

The parallel steps are compared with the same step on one device: JAX's SPMD
partitioner may reorder reductions, so the comparison allows float32 rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding

import nnx
from nnx.jaxapi import partition_spec as P

RULES = [("batch", "data"), ("embed", None), ("mlp", "model")]


class MLP(nnx.Module):
    scale: jax.Array = nnx.param(sharding=("embed",))  # the field option

    def __init__(self, din: int, hidden: int, *, rngs: nnx.Rngs) -> None:
        lecun = jax.nn.initializers.lecun_normal()
        self.w1 = nnx.Param(nnx.with_partitioning(lecun, ("embed", "mlp"))(rngs.params(), (din, hidden)))
        self.b1 = nnx.Param(nnx.with_partitioning(jax.nn.initializers.zeros, ("mlp",))(rngs.params(), (hidden,)))
        self.w2 = nnx.Param(nnx.with_partitioning(lecun, ("mlp", "embed"))(rngs.params(), (hidden, din)))
        self.scale = jnp.ones((din,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return (jax.nn.relu(x @ self.w1.value + self.b1.value) @ self.w2.value) * self.scale


EXPECTED: dict[tuple[str | int, ...], Any] = {("w1",): P(None, "model"), ("b1",): P("model"), ("w2",): P("model", None), ("scale",): P(None)}


def mesh_2d() -> Mesh:
    return Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))


def make() -> MLP:
    return MLP(16, 32, rngs=nnx.Rngs(0))


def test_there_are_eight_devices() -> None:
    assert jax.device_count() == 8


def test_partition_specs_follow_metadata_and_rules() -> None:
    specs: nnx.State[MLP] = nnx.get_partition_spec(nnx.state(make()), RULES)
    assert dict(zip(specs.paths, specs.leaves)) == EXPECTED
    with nnx.logical_axis_rules(RULES):
        assert nnx.get_partition_spec(make()).leaves == specs.leaves


def test_sharded_init_places_every_parameter_per_its_spec() -> None:
    mesh = mesh_2d()
    model = nnx.init_sharded(make, mesh, RULES)
    reference = make()  # the same values, made on one device
    for path, value in zip(nnx.state(model).paths, nnx.state(model).leaves):
        expected = NamedSharding(mesh, EXPECTED[path])
        assert value.sharding.is_equivalent_to(expected, value.ndim), path
        for shard in value.addressable_shards:  # each device holds only its block
            assert shard.data.shape == expected.shard_shape(value.shape), path
    for a, b in zip(nnx.state(model).leaves, nnx.state(reference).leaves):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_sharding_constraint_inside_jit_lays_out_the_state() -> None:
    mesh = mesh_2d()

    @jax.jit
    def create() -> nnx.State[MLP]:
        return nnx.with_sharding_constraint(nnx.state(make()), mesh, RULES)

    state = create()
    for path, value in zip(state.paths, state.leaves):
        assert value.sharding.is_equivalent_to(NamedSharding(mesh, EXPECTED[path]), value.ndim), path


# -- training steps -----------------------------------------------------------------------

Step = Callable[[nnx.State[MLP], jax.Array, jax.Array], tuple[jax.Array, nnx.State[MLP]]]


def train_step(graphdef: nnx.GraphDef[MLP]) -> Step:
    def step(params: nnx.State[MLP], x: jax.Array, y: jax.Array) -> tuple[jax.Array, nnx.State[MLP]]:
        def loss_fn(p: nnx.State[MLP]) -> jax.Array:
            return jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        return loss, jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)

    return step


def data() -> tuple[jax.Array, jax.Array]:
    x = jax.random.normal(jax.random.key(1), (64, 16))
    return x, jnp.sin(x)


def run(step: Any, params: nnx.State[MLP], x: jax.Array, y: jax.Array, n: int = 4) -> tuple[list[float], nnx.State[MLP]]:
    losses: list[float] = []
    for _ in range(n):
        loss, params = step(params, x, y)
        losses.append(float(loss))
    return losses, params


def single_device_reference() -> tuple[list[float], nnx.State[MLP]]:
    graphdef, params = nnx.split(make())
    x, y = data()
    return run(jax.jit(train_step(graphdef)), params, x, y)


def assert_matches_reference(losses: list[float], params: nnx.State[MLP]) -> None:
    ref_losses, ref_params = single_device_reference()
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for a, b in zip(params.leaves, ref_params.leaves):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]  # it trains


def test_data_parallel_step_matches_single_device() -> None:
    mesh = Mesh(np.array(jax.devices()), ("data",))
    graphdef, params = nnx.split(make())
    replicated = jax.tree.map(lambda _: NamedSharding(mesh, P()), params)
    batch = NamedSharding(mesh, P("data"))
    params = jax.device_put(params, replicated)
    x, y = (jax.device_put(a, batch) for a in data())
    step = jax.jit(train_step(graphdef), in_shardings=(replicated, batch, batch), out_shardings=(None, replicated))
    losses, params = run(step, params, x, y)
    assert len(x.addressable_shards) == 8 and x.addressable_shards[0].data.shape == (8, 16)
    assert_matches_reference(losses, params)


def test_tensor_parallel_step_matches_single_device() -> None:
    mesh = mesh_2d()
    model = nnx.init_sharded(make, mesh, RULES)
    graphdef, params = nnx.split(model)
    shardings: nnx.State[MLP] = nnx.get_named_sharding(params, mesh, RULES)
    batch = NamedSharding(mesh, nnx.logical_to_mesh_axes(("batch", "embed"), RULES))
    x, y = (jax.device_put(a, batch) for a in data())
    step = jax.jit(train_step(graphdef), in_shardings=(shardings, batch, batch), out_shardings=(None, shardings))
    losses, params = run(step, params, x, y)
    w1 = params["w1"]
    assert w1.sharding.is_equivalent_to(NamedSharding(mesh, P(None, "model")), 2)
    assert w1.addressable_shards[0].data.shape == (16, 8)  # the hidden axis split 4 ways
    assert_matches_reference(losses, params)


# -- restoring straight into shards ----------------------------------------------------------


class Holder(nnx.Module):
    def __init__(self) -> None:
        self.mlp = make()
        self.rngs = nnx.Rngs(3)


def sharded_abstract_holder(mesh: Mesh) -> Holder:
    holder = nnx.abstract_sharded(Holder, mesh, RULES)
    assert isinstance(holder.mlp.w1.value, jax.ShapeDtypeStruct)
    return holder


def assert_restored_sharded(source: Holder, restored: Holder, mesh: Mesh) -> None:
    for path, a, b in zip(nnx.state(source).paths, nnx.state(source).leaves, nnx.state(restored).leaves):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        assert np.array_equal(np.asarray(a), np.asarray(b)), path
    w1 = restored.mlp.w1.value
    assert w1.sharding.is_equivalent_to(NamedSharding(mesh, P(None, "model")), 2)


def test_checkpoints_restore_straight_into_shards(tmp_path: Path) -> None:
    mesh = mesh_2d()
    source = Holder()
    source.rngs.default()
    file = nnx.checkpoint.save(tmp_path / "m.safetensors", source)
    assert_restored_sharded(source, nnx.checkpoint.restore(file, sharded_abstract_holder(mesh)), mesh)
    directory = nnx.checkpoint.save_orbax(tmp_path / "orbax", source)
    assert_restored_sharded(source, nnx.checkpoint.restore_orbax(directory, sharded_abstract_holder(mesh)), mesh)
    with nnx.checkpoint.CheckpointManager(tmp_path / "run", max_to_keep=1) as manager:
        manager.save(0, source)
        assert_restored_sharded(source, manager.restore(sharded_abstract_holder(mesh)), mesh)


def test_sharded_init_never_holds_a_whole_parameter_on_one_device() -> None:
    """XLA's own accounting of the init computation: per device, the outputs and
    scratch space together stay below the size of the parameter being built."""

    class Wide(nnx.Module):
        def __init__(self) -> None:
            init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), ("embed", "mlp"))
            self.w = nnx.Param(init(jax.random.key(0), (1024, 4096)))

    mesh = Mesh(np.array(jax.devices()).reshape(1, 8), ("data", "model"))
    _, abstract = jax.eval_shape(lambda: nnx.split(Wide()))
    shardings = nnx.get_named_sharding(abstract, mesh, RULES)
    compiled = jax.jit(lambda: nnx.split(Wide())[1], out_shardings=shardings).lower().compile()
    memory = compiled.memory_analysis()
    assert memory is not None  # the CPU backend reports it
    whole = 1024 * 4096 * 4
    assert memory.output_size_in_bytes == whole // 8
    assert memory.output_size_in_bytes + memory.temp_size_in_bytes < whole
    model = nnx.init_sharded(Wide, mesh, RULES)
    assert {s.data.shape for s in model.w.value.addressable_shards} == {(1024, 512)}


def test_orbax_restore_into_a_concrete_sharded_model_keeps_its_layout(tmp_path: Path) -> None:
    mesh = mesh_2d()
    source = Holder()
    directory = nnx.checkpoint.save_orbax(tmp_path / "orbax", source)
    target = nnx.init_sharded(Holder, mesh, RULES)
    assert_restored_sharded(source, nnx.checkpoint.restore_orbax(directory, target), mesh)


def test_sharded_init_under_nnx_jit_with_library_layers() -> None:
    """The nnx.jit form: build inside, constrain the state to its layout, return the module."""
    mesh = mesh_2d()
    kernel_init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), ("embed", "mlp"))
    bias_init = nnx.with_partitioning(jax.nn.initializers.zeros, ("mlp",))

    @nnx.jit
    def create() -> nnx.Linear:
        layer = nnx.Linear(16, 32, kernel_init=kernel_init, bias_init=bias_init, rngs=nnx.Rngs(0))
        nnx.update(layer, nnx.with_sharding_constraint(nnx.state(layer), mesh, RULES))
        return layer

    layer = create()
    assert nnx.cell(layer, "kernel").metadata["sharding"] == ("embed", "mlp")
    assert layer.kernel.sharding.is_equivalent_to(NamedSharding(mesh, P(None, "model")), 2)
    assert layer.bias is not None and layer.bias.sharding.is_equivalent_to(NamedSharding(mesh, P("model")), 1)
    reference = nnx.Linear(16, 32, rngs=nnx.Rngs(0))
    assert np.array_equal(np.asarray(layer.kernel), np.asarray(reference.kernel))


def test_checkpoint_digest_does_not_depend_on_how_an_array_is_sharded() -> None:
    # What lets a checkpoint be verified when the processes hold different pieces of
    # a leaf at save and at restore: each piece adds its part, replicas count once.
    from nnx.checkpoint.digest import block_digest, digests

    mesh = mesh_2d()
    host = np.arange(16 * 24, dtype=np.float32).reshape(16, 24) * 0.5
    expected = block_digest(host, (slice(None), slice(None)), host.shape)
    specs = [P(), P("data"), P(None, "model"), P("model", "data"), P(("data", "model")), P(None, ("model", "data"))]
    placed = [jax.device_put(host, NamedSharding(mesh, spec)) for spec in specs]
    keys = jax.device_put(jax.random.split(jax.random.key(0), 8), NamedSharding(mesh, P("data")))
    found = digests([*placed, jax.random.key_data(keys)])
    assert found[:-1] == [expected] * len(specs)
    key_host = np.asarray(jax.random.key_data(keys))
    assert found[-1] == block_digest(key_host, (slice(None), slice(None)), key_host.shape)
