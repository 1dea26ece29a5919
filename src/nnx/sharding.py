"""Sharding: name the axes of every parameter, let JAX's SPMD engine place them.

A Variable says what its axes *mean* with the ``sharding`` metadata entry, a
tuple of logical axis names, one per array dimension (``None`` for an axis
that is never split)::

    self.w = nnx.Param(nnx.with_partitioning(init, ("embed", "mlp"))(key, (d, h)))
    w: jax.Array = nnx.param(sharding=("embed", "mlp"))        # or on the field

*Rules* map logical names to the axes of a device mesh
(``[("embed", None), ("mlp", "model"), ("batch", "data")]``); without rules a
logical name is taken to be a mesh axis name itself. From a State,
``get_partition_spec`` gives one ``PartitionSpec`` per leaf and
``get_named_sharding`` one ``NamedSharding``; both are States of the same
structure, so they can be given to ``jax.jit(in_shardings=, out_shardings=)``
or ``jax.device_put`` as they are. ``init_sharded`` builds a model directly
in its sharded layout: no device ever holds a whole parameter it does not own.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Generator, Sequence, TypeVar, cast

from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nnx.jaxapi import eval_shape, jit_call, partition_spec, shape_dtype, sharding_constraint
from nnx.graph import merge, split, state as state_of
from nnx.graphdef import GraphDef
from nnx.objects import Object
from nnx.state import State, path_str
from nnx.variables import Boxed

F = TypeVar("F", bound=Callable[..., Any])
N = TypeVar("N")

#: Logical axis names of one array, one entry per dimension.
LogicalAxes = tuple[str | None, ...]
#: A mesh axis (or several, for an axis split over more than one) or None.
MeshAxes = str | tuple[str, ...] | None
#: ``(logical name, mesh axes)`` pairs; the first usable pair for a name wins.
Rules = Sequence[tuple[str, MeshAxes]]

_RULES: contextvars.ContextVar[Rules | None] = contextvars.ContextVar("nnx_logical_axis_rules", default=None)


def with_partitioning(initializer: F, sharding: LogicalAxes, **metadata: Any) -> F:
    """Wrap an initializer so the Variable made from its result records ``sharding``.

    ``nnx.Param(nnx.with_partitioning(jax.nn.initializers.lecun_normal(), ("embed", "mlp"))(key, shape))``
    is a Param whose metadata says: dimension 0 is "embed", dimension 1 is "mlp".
    The wrapped initializer has the same signature; to the type checker it
    returns what the original returns, since a Variable unboxes it on creation.
    """
    axes = tuple(sharding)

    def init(*args: Any, **kwargs: Any) -> Any:
        value = initializer(*args, **kwargs)
        if isinstance(value, Boxed):  # re-wrapping a wrapped initializer: the outer axes win
            return Boxed(value.value, **{**value.metadata, "sharding": axes, **metadata})
        return Boxed(value, sharding=axes, **metadata)

    return cast(F, init)


@contextlib.contextmanager
def logical_axis_rules(rules: Rules) -> Generator[None]:
    """Use ``rules`` wherever no ``rules=`` argument is given, inside the ``with`` block."""
    token = _RULES.set(tuple(rules))
    try:
        yield
    finally:
        _RULES.reset(token)


def logical_to_mesh_axes(axes: LogicalAxes, rules: Rules | None = None) -> PartitionSpec:
    """The ``PartitionSpec`` that places logical ``axes`` on the mesh according to ``rules``.

    A name maps to the first rule for it whose mesh axes are not already used
    by an earlier dimension (a mesh axis can split one dimension only); a name
    with no usable rule is replicated. With no rules at all, names are mesh axes.
    """
    rules = rules if rules is not None else _RULES.get()
    if rules is None:
        return partition_spec(*axes)
    used: set[str] = set()
    spec: list[MeshAxes] = []
    for name in axes:
        chosen: MeshAxes = None
        if name is not None:
            for logical, mesh_axes in rules:
                if logical != name:
                    continue
                wanted = (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes or ())
                if not used.intersection(wanted):
                    chosen = mesh_axes
                    used.update(wanted)
                    break
        spec.append(chosen)
    return partition_spec(*spec)


def _states(target: Any, where: str) -> State[Any]:
    if isinstance(target, State):
        found: State[Any] = target  # pyright: ignore[reportUnknownVariableType]  # Any narrowed to State[Unknown]
        return found
    if isinstance(target, Object):
        return state_of(target)
    raise TypeError(f"{where}: expected a State or a module, got {type(target).__name__}.")


def _spec_for(path: tuple[Any, ...], value: Any, meta: dict[str, Any], rules: Rules | None) -> PartitionSpec:
    axes = meta.get("sharding")
    if axes is None:
        return partition_spec()
    axes = tuple(axes)
    ndim = len(getattr(value, "shape", ()))
    if len(axes) != ndim:
        raise ValueError(
            f"'{path_str(path)}' has shape {tuple(getattr(value, 'shape', ()))} but its sharding "
            f"metadata names {len(axes)} axes {axes}; give one logical name (or None) per dimension."
        )
    return logical_to_mesh_axes(axes, rules)


def get_partition_spec(target: State[N] | Any, rules: Rules | None = None) -> State[N]:
    """A State of the same structure whose leaves are ``PartitionSpec``s (``P()`` = replicated).

    ``target`` is a State (concrete or abstract) or a module. Leaves without
    ``sharding`` metadata are replicated.
    """
    st = _states(target, "nnx.get_partition_spec")
    layout = st._layout
    specs = [
        _spec_for(path, value, dict(meta), rules)
        for path, value, meta in zip(layout.paths, st.leaves, layout.metas)
    ]
    return cast("State[N]", State._make(layout, specs))


def get_named_sharding(target: State[N] | Any, mesh: Mesh, rules: Rules | None = None) -> State[N]:
    """A State of the same structure whose leaves are ``NamedSharding(mesh, spec)``."""
    specs = get_partition_spec(target, rules)
    shardings: list[Any] = []
    for path, spec in zip(specs.paths, specs.leaves):
        missing = [a for a in _mesh_axes(spec) if a not in mesh.axis_names]
        if missing:
            raise ValueError(
                f"'{path_str(path)}' would be split over mesh axes {missing}, which the mesh "
                f"(axes {tuple(mesh.axis_names)}) does not have; add rules mapping its logical "
                "axes to mesh axes, or name mesh axes that exist."
            )
        shardings.append(NamedSharding(mesh, spec))
    return cast("State[N]", State._make(specs._layout, shardings))


def _mesh_axes(spec: PartitionSpec) -> list[str]:
    names: list[str] = []
    for entry in spec:
        if isinstance(entry, str):
            names.append(entry)
        elif entry is not None:
            names.extend(str(a) for a in cast("tuple[Any, ...]", entry))
    return names


def init_sharded(make: Callable[[], N], mesh: Mesh, rules: Rules | None = None) -> N:
    """Build ``make()`` with every leaf created directly in its sharded layout.

    The constructor is traced twice: once abstractly (``jax.eval_shape``) to
    learn the shapes and sharding metadata, then under ``jax.jit`` with
    ``out_shardings`` so each device computes only its own shards. The model is
    never materialised on one device. Use it for models too large for one.
    """
    graphdef, _, shardings = _plan(make, mesh, rules)
    values = jit_call(lambda: split(make())[1], shardings)
    return merge(graphdef, values)


def _plan(make: Callable[[], N], mesh: Mesh, rules: Rules | None) -> tuple[GraphDef[N], State[N], State[N]]:
    """Trace ``make`` abstractly: its GraphDef, its abstract State, and the sharding of every leaf."""
    graphdef, abstract = eval_shape(lambda: split(make()))
    shardings: State[N] = get_named_sharding(abstract, mesh, rules)
    return graphdef, abstract, shardings


def abstract_sharded(make: Callable[[], N], mesh: Mesh, rules: Rules | None = None) -> N:
    """``make()``'s structure with ``jax.ShapeDtypeStruct`` leaves that carry their shardings.

    Nothing is computed. This is the target to restore a checkpoint straight
    into its shards: ``nnx.checkpoint.restore(path, nnx.abstract_sharded(make, mesh, rules))``.
    """
    graphdef, abstract, shardings = _plan(make, mesh, rules)
    placed = [shape_dtype(tuple(a.shape), a.dtype, s) for a, s in zip(abstract.leaves, shardings.leaves)]
    return merge(graphdef, State._make(abstract._layout, placed))


def with_sharding_constraint(target: State[N], mesh: Mesh, rules: Rules | None = None) -> State[N]:
    """Inside a jitted function: ask XLA to lay ``target`` out per its sharding metadata."""
    shardings: State[N] = get_named_sharding(target, mesh, rules)
    return sharding_constraint(target, shardings)
