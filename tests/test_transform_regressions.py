"""Regressions in the lifted transforms (issue 11): each test failed before its fix."""

# pyright: reportUnknownLambdaType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownMemberType=false
# (The transforms wrap lambdas and dict-taking functions, as users write them: pyright cannot
# infer a lambda's parameter types through a transform's ParamSpec. mypy --strict checks fully.)

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

REPLICATED: PartitionSpec = PartitionSpec()  # type: ignore[no-untyped-call]  # jax: untyped constructor

import nnx


def test_grad_of_a_variable_argument_is_a_cell_of_its_kind() -> None:
    v = nnx.Param(jnp.array([1.0, 2.0]))
    g = nnx.grad(lambda p: jnp.sum(p.value**2))(v)
    assert isinstance(g, nnx.Param) and g is not v
    np.testing.assert_allclose(g.value, [2.0, 4.0])
    np.testing.assert_allclose(v.value, [1.0, 2.0])  # the argument is untouched


def test_value_and_grad_of_a_variable_with_other_arguments_and_writes() -> None:
    v = nnx.Param(jnp.array([1.0, 2.0]))
    count = nnx.Variable(jnp.array(0))

    def loss(p: nnx.Param[jax.Array], c: nnx.Variable[jax.Array], x: jax.Array) -> jax.Array:
        c.value = c.value + 1  # lands on the caller's cell, as for modules
        return jnp.sum(p * x)

    value, g = nnx.value_and_grad(loss)(v, count, jnp.array([3.0, 4.0]))
    assert float(value) == 11.0
    np.testing.assert_allclose(g.value, [3.0, 4.0])
    assert int(count.value) == 1


def test_grad_of_a_variable_that_wrt_does_not_match_names_the_kind() -> None:
    stat = nnx.BatchStat(jnp.ones(2))
    with pytest.raises(ValueError, match="BatchStat"):
        nnx.grad(lambda s: jnp.sum(s.value))(stat)  # wrt defaults to nnx.Param


@pytest.mark.parametrize("option", ["static_argnums", "static_argnames", "donate_argnums", "donate_argnames"])
def test_jit_accepts_none_for_argument_lists_like_jax_jit(option: str) -> None:
    f = nnx.jit(lambda x: x * 2, **{option: None})
    np.testing.assert_allclose(f(jnp.ones(2)), [2.0, 2.0])


def _mesh() -> Mesh:
    return Mesh(np.array(jax.devices()[:1]), ("d",))


def test_jit_in_and_out_shardings_per_argument_with_plain_arrays() -> None:
    whole = NamedSharding(_mesh(), REPLICATED)

    @nnx.jit(in_shardings=(whole, None), out_shardings=(whole, None))
    def f(x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        return x + y, x * y

    a, b = f(jnp.ones(3), jnp.full(3, 2.0))
    np.testing.assert_allclose(a, [3.0] * 3)
    np.testing.assert_allclose(b, [2.0] * 3)
    assert a.sharding == whole


def test_jit_in_shardings_of_a_module_apply_to_its_state() -> None:
    mesh = _mesh()
    model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
    by_leaf: nnx.State[Any] = nnx.get_named_sharding(nnx.state(model), mesh)
    whole = NamedSharding(mesh, REPLICATED)
    for spec in (whole, by_leaf):

        @nnx.jit(in_shardings=(spec, whole), out_shardings=whole)
        def step(m: nnx.Linear, x: jax.Array) -> jax.Array:
            bias = m.bias
            assert bias is not None
            bias.value = bias.value + 1.0
            return m(x)

        before = np.asarray(model.bias)
        y = step(model, jnp.ones((4, 2)))
        assert y.shape == (4, 3) and y.sharding == whole
        np.testing.assert_allclose(np.asarray(model.bias), before + 1.0)


def test_jit_in_shardings_with_a_static_argument_and_a_pytree_of_modules() -> None:
    whole = NamedSharding(_mesh(), REPLICATED)
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))

    # Static arguments take no entry, as in jax.jit; a pytree's entry may be a prefix.
    @nnx.jit(static_argnums=1, in_shardings=({"m": whole, "x": None},))
    def f(t: dict[str, Any], scale: float) -> jax.Array:
        out: jax.Array = t["m"](t["x"]) * scale
        return out

    assert f({"m": model, "x": jnp.ones((1, 2))}, 2.0).shape == (1, 2)
    with pytest.raises(ValueError, match="in_shardings has 2 entries"):
        nnx.jit(lambda x: x, in_shardings=(whole, whole))(jnp.ones(2))


def test_jit_donate_argnames_donates_that_argument_however_it_is_passed() -> None:
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))

    @nnx.jit(donate_argnames=("x",))
    def f(m: nnx.Linear, x: jax.Array, y: jax.Array) -> jax.Array:
        return m(x) + y

    x, y = jnp.ones((3, 2)), jnp.ones((3, 2))
    f(model, x, y)
    assert x.is_deleted() and not y.is_deleted()
    x = jnp.ones((3, 2))
    f(model, y=y, x=x)
    assert x.is_deleted() and not y.is_deleted()
    assert not model.kernel.value.is_deleted()  # the module was not donated


def test_scan_takes_a_pytree_prefix_of_in_axes() -> None:
    def body(c: jax.Array, xs: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        return c + xs["a"] * xs["b"], c

    scanned = nnx.scan(body, in_axes=(nnx.Carry, {"a": 0, "b": None}))
    carry, ys = scanned(jnp.float32(0.0), {"a": jnp.arange(4.0), "b": jnp.float32(1.0)})
    assert float(carry) == 6.0
    np.testing.assert_allclose(ys, [0.0, 0.0, 1.0, 3.0])


def test_scan_takes_a_pytree_prefix_of_out_axes() -> None:
    def body(c: jax.Array, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        return c + 1, {"row": jnp.stack([x, x]), "col": jnp.stack([x, x])}

    _, ys = nnx.scan(body, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, {"row": 0, "col": 1}))(
        jnp.float32(0.0), jnp.arange(3.0)
    )
    assert ys["row"].shape == (3, 2) and ys["col"].shape == (2, 3)
    np.testing.assert_allclose(ys["col"][0], [0.0, 1.0, 2.0])


def test_vmap_and_scan_take_a_prefix_over_a_pytree_holding_a_module() -> None:
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (4, 1, 2))
    mapped = nnx.vmap(lambda t: t["m"](t["x"]), in_axes=({"m": None, "x": 0},))({"m": model, "x": xs})
    np.testing.assert_allclose(mapped, jax.vmap(model)(xs), rtol=1e-6)

    def body(c: jax.Array, t: dict[str, Any]) -> tuple[jax.Array, None]:
        return t["m"](c) + t["x"], None

    carry, _ = nnx.scan(body, in_axes=(nnx.Carry, {"m": None, "x": 0}))(jnp.ones((1, 2)), {"m": model, "x": xs})
    expected = jnp.ones((1, 2))
    for x in xs:
        expected = model(expected) + x
    np.testing.assert_allclose(carry, expected, rtol=1e-5)


def test_scan_traces_its_body_once_per_structure_outside_jit() -> None:
    traces: list[int] = []

    def body(c: jax.Array, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
        traces.append(1)
        return (c + x if train else c), x  # a broadcast Python flag stays a Python value

    scanned = nnx.scan(body, in_axes=(nnx.Carry, 0, None))
    for step in range(3):
        carry, _ = scanned(jnp.float32(step), jnp.arange(3.0), True)
        assert float(carry) == step + 3.0
    assert len(traces) == 1
    assert float(scanned(jnp.float32(0.0), jnp.arange(3.0), False)[0]) == 0.0
    assert len(traces) == 2  # another static flag: another trace
    scanned(jnp.float32(0.0), jnp.arange(5.0), True)
    assert len(traces) == 3  # another length


def test_scan_over_a_layer_stack_traces_once_and_keeps_state_flowing() -> None:
    traces: list[int] = []

    @nnx.vmap(in_axes=0, out_axes=0)
    def create(rngs: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(3, 3, rngs=rngs)

    layers = create(nnx.Rngs(0).fork(split=4))

    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def forward(x: jax.Array, layer: nnx.Linear) -> jax.Array:
        traces.append(1)
        bias = layer.bias
        assert bias is not None
        bias.value = bias.value + 1.0
        return layer(x)

    forward(jnp.ones((2, 3)), layers)
    forward(jnp.ones((2, 3)), layers)
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(layers.bias), jnp.full((4, 3), 2.0))


class _Holder(nnx.Module):
    def __init__(self, inner: nnx.Linear) -> None:
        self.inner = inner


def test_vmap_refuses_one_module_mapped_two_ways_and_changes_nothing() -> None:
    """``nnx.vmap(f, in_axes=(0, 1))(m, m)`` used axis 0 for both (the shared cells are listed
    once, under the first argument), a silent wrong answer; Flax raises too."""
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    before = jax.tree.map(np.asarray, nnx.state(model))
    with pytest.raises(ValueError, match=r"Inconsistent aliasing detected: the same Param is argument 0 at '(kernel|bias)' with axis 0 and argument 1 at '(kernel|bias)' with axis 1 \((kernel|bias): 0, (kernel|bias): 1\)"):
        nnx.vmap(lambda a, b: a.kernel.value.sum() + b.kernel.value.sum(), in_axes=(0, 1))(model, model)
    after = jax.tree.map(np.asarray, nnx.state(model))
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_vmap_refuses_a_shared_submodule_mapped_two_ways() -> None:
    shared = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    left, right = _Holder(shared), _Holder(shared)
    with pytest.raises(ValueError, match=r"argument 0 at 'inner\.(kernel|bias)' with axis 0 and argument 1 at 'inner\.(kernel|bias)' with axis None"):
        nnx.vmap(lambda a, b: a.inner.kernel.value.sum(), in_axes=(0, None))(left, right)


def test_vmap_accepts_aliasing_that_agrees() -> None:
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
    both = nnx.vmap(lambda a, b: a.kernel.value.sum(0) + b.kernel.value.sum(0), in_axes=(0, 0))(model, model)
    once = nnx.vmap(lambda a: 2 * a.kernel.value.sum(0), in_axes=0)(model)
    np.testing.assert_allclose(np.asarray(both), np.asarray(once), rtol=1e-6)
    params_mapped = nnx.StateAxes({nnx.Param: 0, ...: None})
    again = nnx.StateAxes({nnx.Param: 0, ...: None})  # equal, not the same object: still checked, and agrees
    out = nnx.vmap(lambda a, b: a.kernel.value.sum(0), in_axes=(params_mapped, again))(model, model)
    assert out.shape == (2,)  # one sum per mapped row of the kernel


def test_scan_returns_a_module_carry_as_the_callers_updated_object() -> None:
    """``nnx.scan`` returned ``None`` for a carry that is a module: the carry was looked up
    among the non-module arguments only."""

    class Total(nnx.Module):
        def __init__(self) -> None:
            self.value = nnx.Variable(jnp.zeros(()))

    def add(total: Total, x: jax.Array) -> tuple[Total, jax.Array]:
        total.value[...] = total.value[...] + x.sum()
        return total, x.sum()

    total = Total()
    carry, sums = nnx.scan(add, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))(total, jnp.ones((4, 2)))
    assert carry is total and float(total.value[...]) == 8.0
    assert sums.shape == (4,)


def test_scan_refuses_axes_that_cannot_describe_a_loop_when_it_is_made() -> None:
    """``out_axes=(nnx.Carry, None)`` said only "entries must be ... an int" at the first call;
    two carries returned the first carry twice, silently. Flax refuses all of these when the
    scan is made, in words its users look for; nnx now does too, naming the fix."""
    step = lambda c, x: (c + x, x)  # noqa: E731
    with pytest.raises(ValueError, match=r"Cannot broadcast output state\. Got None.*nnx\.Carry"):
        nnx.scan(step, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, None))
    with pytest.raises(ValueError, match=r"Cannot broadcast output state\. Got StateAxes"):
        nnx.scan(step, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, nnx.StateAxes({...: None})))
    with pytest.raises(ValueError, match=r"Found multiple Carry definitions in in_axes"):
        nnx.scan(step, in_axes=(nnx.Carry, nnx.Carry), out_axes=(nnx.Carry, 0))
    with pytest.raises(ValueError, match=r"If one of in_axes or out_axes has Carry, the other must also have Carry"):
        nnx.scan(step, in_axes=(nnx.Carry, 0), out_axes=(0, 0))
    with pytest.raises(ValueError, match=r"If one of in_axes or out_axes has Carry, the other must also have Carry"):
        nnx.scan(lambda x: x, in_axes=0, out_axes=nnx.Carry)
    carry, ys = nnx.scan(step, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0))(jnp.array(0.0), jnp.arange(3.0))
    assert float(carry) == 3.0 and ys.shape == (3,)


def test_a_stream_name_as_a_filter_gets_the_path_translation_and_the_translation_works() -> None:
    """Flax's ``StateAxes({'dropout': None, ...})`` names an RNG stream by path; in nnx a string
    names a collection, so the error says which filter to write instead -- and that one works."""
    with pytest.raises(ValueError, match=r"unknown collection 'dropout'.*write nnx\.PathContains\('dropout'\)"):
        nnx.StateAxes({"dropout": None, ...: 0})
    axes = nnx.StateAxes({nnx.PathContains("dropout"): None, ...: 0})

    @nnx.split_rngs(splits=3, only="params")
    @nnx.vmap(in_axes=(axes,))
    def draw(rngs: nnx.Rngs) -> tuple[jax.Array, jax.Array]:
        return jax.random.normal(rngs.params(), ()), jax.random.normal(rngs.dropout(), ())

    params, dropout = draw(nnx.Rngs(params=0, dropout=1))
    assert len(set(np.asarray(params).tolist())) == 3  # split: one key per member
    assert len(set(np.asarray(dropout).tolist())) == 1  # broadcast: one key for all


def test_vmap_names_the_broadcast_state_a_function_wrote_a_mapped_value_into() -> None:
    """JAX named the offending leaf ``out_axes[1][0]`` (a place in nnx's flat list of leaves);
    the error now names the state's path and kind, keeping JAX's words around them."""

    class Broadcast(nnx.Variable[nnx.A]):
        pass

    class Env(nnx.Module):
        def __init__(self) -> None:
            self.total = Broadcast(jnp.array(0))
            self.index = nnx.BatchStat(jnp.arange(4))

    env = Env()

    def add(env: Env) -> None:
        env.total.value += env.index.value

    vmapped = nnx.vmap(add, in_axes=(nnx.StateAxes({Broadcast: None, ...: 0}),))
    pattern = r"at vmap state 'total' \(Broadcast\) of argument 0, got axis spec None but output was batched.*give it an axis"
    with pytest.raises(ValueError, match=pattern):
        vmapped(env)
    assert int(env.total.value) == 0


class _Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        self.w = nnx.Param(jax.random.normal(rngs.params(), (2,)))
        self.calls = nnx.BatchStat(jnp.zeros((), jnp.int32))


def test_vmap_out_axes_give_a_returned_module_per_kind_axes() -> None:
    """``out_axes=nnx.StateAxes(...)`` for a returned module was handed to jax.vmap as it was
    ("out_axes must be an int, None, or container"); Flax stacks the Params and keeps one
    copy of the rest. A State of axes (nnx.prefix) spells the same per leaf."""
    axes = nnx.StateAxes({nnx.Param: 0, ...: None})
    made = nnx.vmap(_Block, in_axes=0, out_axes=axes)(nnx.Rngs(0).fork(split=3))
    assert made.w.shape == (3, 2) and made.calls.shape == ()
    assert not np.allclose(made.w[0], made.w[1])

    per_leaf = nnx.prefix(nnx.eval_shape(lambda: _Block(nnx.Rngs(0))), {nnx.Param: 0, ...: None})
    again = nnx.vmap(_Block, in_axes=0, out_axes=per_leaf)(nnx.Rngs(0).fork(split=3))
    np.testing.assert_allclose(again.w, made.w)
    assert again.calls.shape == ()

    with pytest.raises(ValueError, match=r"out_axes gives StateAxes.*not a module \(.*\); nnx.StateAxes applies"):
        nnx.vmap(lambda x: x * 2, out_axes=axes)(jnp.ones((3, 2)))


@pytest.mark.parametrize(
    "make",
    [
        lambda spec: nnx.vmap(lambda x: x, in_axes=spec),
        lambda spec: nnx.vmap(lambda x: x, out_axes=spec),
        lambda spec: nnx.pmap(lambda x: x, in_axes=spec),
        lambda spec: nnx.scan(lambda c, x: (c, x), in_axes=(nnx.Carry, spec)),
        lambda spec: nnx.jit(lambda x: x, in_shardings=spec),
        lambda spec: nnx.grad(lambda x: x, argnums=spec),
    ],
    ids=["vmap-in", "vmap-out", "pmap", "scan", "jit", "grad"],
)
def test_a_module_or_variable_given_as_a_spec_is_refused_when_the_transform_is_made(make: Any) -> None:
    """``in_axes=model`` (or a Variable, or in_shardings/argnums) was taken as a pytree of
    specs and failed obscurely at the call, if at all; it is a spec, not an argument."""
    with pytest.raises(ValueError, match=r"in_axes|out_axes|in_shardings|argnums"):
        make(nnx.Dict(a=nnx.Param(jnp.ones(1))))
    with pytest.raises(ValueError, match=r"holds a Param: Graph nodes are not allowed as prefixes \(Variables prefixes are not supported\)"):
        make((nnx.Param(jnp.ones(1)),))


def test_shard_map_refuses_one_variable_given_two_specs() -> None:
    """``shard_map(in_specs=(P(), P('x')))(v, v)`` laid the shared Variable out by the first
    spec, silently; the frame lists it once. Flax raises too."""
    v = nnx.Param(jnp.ones(2))
    mesh = Mesh(np.array(jax.devices()[:1]), ("x",))
    f = nnx.shard_map(lambda a, b: a.value + b.value, mesh=mesh, in_specs=(REPLICATED, PartitionSpec("x")), out_specs=REPLICATED)  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match=r"Inconsistent aliasing detected: the same Param is argument 0 at '<root>' with spec"):
        f(v, v)
    np.testing.assert_allclose(nnx.shard_map(lambda a, b: a.value + b.value, mesh=mesh, in_specs=REPLICATED, out_specs=REPLICATED)(v, v), 2 * np.ones(2))
