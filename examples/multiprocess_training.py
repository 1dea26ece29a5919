# pyright: reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownLambdaType=false
# (jax's distributed/sharding/tree APIs and optax are partly unannotated; mypy --strict
# checks this file fully, and so do pyright's other rules.)
"""Training one nnx model over several processes with JAX's distributed runtime.

Launch N copies of this script, one per process; process 0 also runs the
coordinator. On one machine (CPU, gloo collectives, 2 devices per process)::

    python examples/multiprocess_training.py --process-id 0 --num-processes 2 --coordinator 127.0.0.1:12355 &
    python examples/multiprocess_training.py --process-id 1 --num-processes 2 --coordinator 127.0.0.1:12355

On a cluster, give each host its process id and the coordinator's address;
nothing else changes. With ``--num-processes 1`` (the default) the same
training runs in one process on as many devices as all processes together,
which gives the same losses: the global batch and the programs are the same.

The run has three parts:

1. data parallel: a ``("data",)`` mesh over every device of every process;
   the model is replicated, each process feeds only its own rows of the global
   batch (``jax.make_array_from_process_local_data``), and XLA all-reduces the
   gradients across processes;
2. checkpoint: every process takes part in an orbax save of the optimizer
   (model, RNG keys and optimizer state) into ``--save DIR``/data_parallel;
   ``--restore DIR`` starts both parts from such checkpoints instead, also
   with another number of processes;
3. data + tensor parallel: a ``("data", "model")`` mesh whose ``model`` axis
   spans the processes; every parameter names its logical axes
   (``nnx.with_partitioning``), logical axis rules map ``mlp`` to ``model``,
   and ``nnx.jit`` steps take the model and optimizer as arguments. Its
   state is saved into ``DIR``/tensor_parallel: no process holds a whole
   hidden kernel, so each writes and checksums the shards it holds; the
   processes then restore it into a fresh optimizer and check it is equal.

A process that cannot join (no coordinator, a peer that never starts) stops
after ``--join-timeout`` seconds with an error saying so, instead of hanging.

Prints one JSON line at the end (``--json``): the loss curves of both parts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from typing import Any, cast

from _cli import OneLineErrors, at_least  # one-line errors for bad flags, as every example


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineErrors(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--process-id", type=at_least(0), default=0, help="this process's index, 0 .. N-1")
    parser.add_argument("--num-processes", type=at_least(1), default=1, help="how many processes take part (N)")
    parser.add_argument("--coordinator", default="127.0.0.1:12355", help="host:port of process 0's coordinator")
    parser.add_argument("--devices", type=at_least(1), default=None, help="CPU devices per process (default: 4 / N)")
    parser.add_argument("--steps", type=at_least(1), default=None, help="steps per part (default 40; 8 with --quick)")
    parser.add_argument("--batch", type=at_least(1), default=16, help="global batch size")
    parser.add_argument("--save", default=None, help="directory to save both parts' orbax checkpoints into")
    parser.add_argument("--restore", default=None, help="directory (as --save wrote it) to start both parts from")
    parser.add_argument("--join-timeout", type=at_least(1), default=60, help="seconds to wait for all processes to join")
    parser.add_argument("--json", action="store_true", help="print the loss curves as one JSON line")
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("NNX_EXAMPLES_QUICK") == "1",
        help="a few steps (what CI runs; also NNX_EXAMPLES_QUICK=1)",
    )
    args = parser.parse_args(argv)
    args.devices = args.devices or max(1, 4 // args.num_processes)
    args.steps = args.steps or (8 if args.quick else 40)
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and "jax" not in sys.modules:  # device count and platform only work before JAX starts
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={ARGS.devices}".strip()
    os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402  # pyright: ignore[reportMissingTypeStubs]  # optax ships no stubs
from jax.sharding import Mesh, NamedSharding  # noqa: E402

import nnx  # noqa: E402

DIN, HIDDEN, DOUT = 8, 32, 4
Rules = list[tuple[str, str | None]]
DATA_PARALLEL: Rules = [("batch", "data"), ("embed", None), ("mlp", None)]  # weights replicated
TENSOR_PARALLEL: Rules = [("batch", "data"), ("embed", None), ("mlp", "model")]  # hidden units split over "model"


def dense(din: int, dout: int, axes: tuple[str, str], *, rngs: nnx.Rngs) -> nnx.Linear:
    """An ``nnx.Linear`` whose kernel and bias name their logical axes."""
    kernel_init = nnx.with_partitioning(jax.nn.initializers.lecun_normal(), axes)
    bias_init = nnx.with_partitioning(jax.nn.initializers.zeros, axes[1:])
    return nnx.Linear(din, dout, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs) -> None:
        self.hidden = dense(DIN, HIDDEN, ("embed", "mlp"), rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)  # its RNG state is part of the checkpoint
        self.out = dense(HIDDEN, DOUT, ("mlp", "embed"), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(self.dropout(jax.nn.relu(self.hidden(x))))


def make_optimizer() -> nnx.Optimizer:
    return nnx.Optimizer(MLP(rngs=nnx.Rngs(0)), optax.adam(1e-2), wrt=nnx.Param)


@nnx.jit
def train_step(model: MLP, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    def loss_fn(model: MLP) -> jax.Array:
        return jnp.mean((model(x) - y) ** 2)

    loss: jax.Array
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def global_batch(step: int, size: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The whole batch of a step (every process can make it; each feeds only its rows)."""
    rng = np.random.default_rng(step)
    x = rng.normal(size=(size, DIN)).astype(np.float32)
    y = np.stack([np.sin(x[:, 0] + x[:, 1]), x[:, 2] * x[:, 3], np.cos(x[:, 4]), x[:, 5:].sum(1)], 1)
    return x, y.astype(np.float32)


def local_rows(sharding: NamedSharding, shape: tuple[int, ...]) -> slice:
    """The rows of a batch that this process's devices hold (one contiguous range here)."""
    starts, stops = [], []
    indices: Any = sharding.addressable_devices_indices_map(shape)
    for index in indices.values():
        rows: slice = index[0]
        starts.append(rows.start or 0)
        stops.append(shape[0] if rows.stop is None else rows.stop)
    return slice(min(starts), max(stops))


def feed(mesh: Mesh, rules: Rules, step: int, size: int) -> tuple[jax.Array, jax.Array]:
    """This process's rows of the step's batch, assembled into global arrays."""
    x, y = global_batch(step, size)
    x_sharding = NamedSharding(mesh, nnx.logical_to_mesh_axes(("batch", None), rules))
    y_sharding = NamedSharding(mesh, nnx.logical_to_mesh_axes(("batch", None), rules))
    mine = local_rows(x_sharding, x.shape)
    return (
        jax.make_array_from_process_local_data(x_sharding, x[mine], x.shape),  # type: ignore[no-untyped-call]  # untyped in jax
        jax.make_array_from_process_local_data(y_sharding, y[mine], y.shape),  # type: ignore[no-untyped-call]  # untyped in jax
    )


def train(mesh: Mesh, rules: Rules, args: argparse.Namespace, start: int, restore: str | None) -> tuple[nnx.Optimizer, list[float]]:
    """Create the optimizer (and model) sharded by ``rules`` on ``mesh``, then train."""
    optimizer = nnx.init_sharded(make_optimizer, mesh, rules)
    if restore is not None:  # every process reads the shards its devices hold
        nnx.checkpoint.restore_orbax(restore, optimizer)
    model = optimizer.model
    assert isinstance(model, MLP)
    losses = []
    for step in range(start, start + args.steps):
        x, y = feed(mesh, rules, step, args.batch)
        losses.append(float(train_step(model, optimizer, x, y)))
    return optimizer, losses


def same_state(a: nnx.Optimizer, b: nnx.Optimizer) -> bool:
    """Whether two optimizers hold equal arrays (compared on the devices: neither is whole here)."""
    equal = jax.jit(lambda x, y: jnp.array_equal(jax.random.key_data(x), jax.random.key_data(y))
                    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else jnp.array_equal(x, y))  # fmt: skip
    return all(bool(equal(x, y)) for x, y in zip(nnx.state(a).leaves, nnx.state(b).leaves))


def join(args: argparse.Namespace) -> None:
    """Join the other processes, or stop with a clear error within ``--join-timeout``."""
    if args.num_processes == 1:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # type: ignore[no-untyped-call]  # collectives between CPU processes
    def give_up() -> None:
        if args.process_id == 0:
            problem = f"as the coordinator at {args.coordinator}, waited {args.join_timeout} s but not all {args.num_processes} processes joined"
        else:
            problem = f"could not join the coordinator at {args.coordinator} within {args.join_timeout} s"
        print(
            f"multiprocess_training: process {args.process_id} of {args.num_processes} {problem}: is every "
            "process running, process 0 included, with the same --num-processes and --coordinator?",
            file=sys.stderr,
            flush=True,
        )
        os._exit(3)  # the coordination client is blocked in native code: leave now

    # JAX would abort the process after its own timeout with a long native log; the
    # watchdog runs out first and says what went wrong in one line.
    watchdog = threading.Timer(args.join_timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=args.join_timeout + 30,
            heartbeat_timeout_seconds=max(10, args.join_timeout),
        )
    finally:
        watchdog.cancel()


def run(args: argparse.Namespace) -> dict[str, Any]:
    join(args)
    devices = np.array(jax.devices())  # every device of every process, process 0's first
    n = len(devices)
    me = jax.process_index()

    # 1. Data parallel over all devices.
    mesh = Mesh(devices, ("data",))
    start = args.steps if args.restore else 0
    restore = {part: os.path.join(args.restore, part) if args.restore else None for part in ("data_parallel", "tensor_parallel")}
    optimizer, dp_losses = train(mesh, DATA_PARALLEL, args, start, restore["data_parallel"])
    if args.save:  # every process writes its part; orbax synchronises them
        nnx.checkpoint.save_orbax(os.path.join(args.save, "data_parallel"), optimizer)

    # 3. Data + tensor parallel: "model" runs across processes (one row of devices per process).
    n_model = min(n, max(2, jax.process_count()))
    grid = devices.reshape(n_model, n // n_model).T  # (data, model): a column per process
    tp_mesh = Mesh(grid, ("data", "model"))
    tp_optimizer, tp_losses = train(tp_mesh, TENSOR_PARALLEL, args, start, restore["tensor_parallel"])
    tp_restored_equal = None
    if args.save:  # the state is split across processes: each saves (and checksums) its shards
        saved = nnx.checkpoint.save_orbax(os.path.join(args.save, "tensor_parallel"), tp_optimizer)
        fresh = nnx.init_sharded(make_optimizer, tp_mesh, TENSOR_PARALLEL)
        tp_restored_equal = same_state(nnx.checkpoint.restore_orbax(saved, fresh), tp_optimizer)
    tp_model = tp_optimizer.model
    assert isinstance(tp_model, MLP)
    kernel = tp_model.hidden.kernel[...]  # the array (the layer holds a Param cell)
    result: dict[str, Any] = {
        "process": me,
        "processes": jax.process_count(),
        "devices": n,
        "data_parallel": dp_losses,
        "tensor_parallel": tp_losses,
        "hidden_kernel_sharding": str(cast(NamedSharding, kernel.sharding).spec),
        "hidden_kernel_local_shape": list(kernel.addressable_shards[0].data.shape),
        "hidden_kernel_whole_here": kernel.is_fully_addressable,
        "tensor_parallel_restored_equal": tp_restored_equal,
    }
    if me == 0 and not args.json:
        print(f"{jax.process_count()} process(es), {n} devices; mesh {dict(tp_mesh.shape)}")
        for name in ("data_parallel", "tensor_parallel"):
            print(f"{name:16s} " + " ".join(f"{v:.4f}" for v in result[name]))
        print(f"hidden kernel: spec {result['hidden_kernel_sharding']}, per device {result['hidden_kernel_local_shape']}")
    return result


def main() -> None:
    args = ARGS if ARGS is not None else parse_args(sys.argv[1:])
    if args.num_processes == 1 and jax.device_count() < args.devices:  # (asking starts JAX's backend)
        # JAX started before this script could ask for devices (a test runner imported
        # it): run again in a fresh process.
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:]], capture_output=True, text=True, timeout=600)
        print(done.stdout, end="")
        if done.returncode != 0:
            raise RuntimeError(f"multiprocess_training.py failed in its own process:\n{done.stderr[-4000:]}")
        return
    result = run(args)
    if args.json:
        print(json.dumps(result), flush=True)
    losses = result["data_parallel"]
    if not args.restore:  # a restored run starts where the loss is already low
        assert np.mean(losses[-3:]) < losses[0], f"training did not reduce the loss: {losses}"


if __name__ == "__main__":
    main()
