"""Graph mode and tree mode (Flax 0.12's switches, ``nnx.modes``) and the ``nnx.compat`` namespace.

Graph mode is nnx's behaviour: sharing and cycles are allowed. Tree mode
(``graph=False`` or ``nnx.set_graph_mode(False)``) means the same thing plus one
promise checked on entry: no Variable, module or container is reachable along
two paths. These tests check the promise is enforced everywhere it is offered,
that the error names both paths, that nothing changes when it fires, and that
a model which keeps the promise gets the very same results in either mode.
"""

# pyright: reportUnknownLambdaType=false, reportUnknownArgumentType=false, reportUnknownVariableType=false, reportUnknownMemberType=false
# (The transforms here run small lambdas over modules typed Any, so that one table drives every
# transform; mypy --strict and the other pyright rules still apply.)

from __future__ import annotations

import re
import threading
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

import nnx
import nnx.seed_compat
from nnx.jaxapi import partition_spec
from nnx.state import path_str
from test_properties import SETTINGS, Case, analyze, graphs


class Pair(nnx.Module):
    """Two submodules: shared when built with one layer, a tree with two."""

    def __init__(self, a: nnx.Linear, b: nnx.Linear) -> None:
        self.a = a
        self.b = b

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.b(self.a(x))


def linear(seed: int = 0) -> nnx.Linear:
    return nnx.Linear(2, 2, rngs=nnx.Rngs(seed))


def tied() -> Pair:
    layer = linear()
    return Pair(layer, layer)


def untied() -> Pair:
    return Pair(linear(0), linear(1))


def leaves_of(model: Any) -> list[np.ndarray[Any, Any]]:
    """Copies of a model's state values, to compare before and after."""
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model))]


def assert_same_result(a: Any, b: Any) -> None:
    """Two results of one function in two modes: same pytree shape, equal arrays, same types."""
    tree_a: Any  # PyTreeDef's == is untyped
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, jax.ShapeDtypeStruct):
            assert (x.shape, x.dtype) == (y.shape, y.dtype)
        elif isinstance(x, (jax.Array, np.ndarray)):
            np.testing.assert_allclose(x, y, rtol=1e-6)
        elif isinstance(x, str):
            assert x == y
        else:
            assert type(x) is type(y)


def named_paths(message: str) -> tuple[str, str]:
    """The two paths a tree-mode error names."""
    found = re.search(r'found at paths "([^"]*)" and "([^"]*)"', message)
    assert found is not None, message
    return found[1], found[2]


# -- the switches ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def graph_mode_restored() -> Any:
    """Each test starts and ends in graph mode, whatever it switched."""
    assert nnx.set_graph_mode.current_value() and nnx.set_graph_updates.current_value()
    yield
    nnx.set_graph_mode(True)
    nnx.set_graph_updates(True)


def test_graph_mode_is_the_default_and_sharing_is_allowed() -> None:
    model = tied()
    graphdef, state = nnx.split(model)
    again = nnx.merge(graphdef, state)
    assert again.a is again.b


def test_set_graph_mode_called_plainly_switches_until_switched_back() -> None:
    nnx.set_graph_mode(False)
    assert not nnx.set_graph_mode.current_value()
    with pytest.raises(ValueError, match="found at paths"):
        nnx.split(tied())
    nnx.set_graph_mode(True)
    nnx.split(tied())


def test_set_graph_mode_as_a_context_restores_the_previous_setting() -> None:
    with nnx.set_graph_mode(False):
        assert not nnx.set_graph_mode.current_value()
        with nnx.set_graph_mode(True):
            nnx.split(tied())  # the inner block is graph mode again
        with pytest.raises(ValueError, match="found at paths"):
            nnx.state(tied())
    assert nnx.set_graph_mode.current_value()
    nnx.state(tied())


def test_set_graph_mode_as_a_decorator_applies_only_during_calls() -> None:
    @nnx.set_graph_mode(False)
    def in_tree_mode() -> bool:
        return nnx.set_graph_mode.current_value()

    assert nnx.set_graph_mode.current_value()  # decorating switched nothing
    assert in_tree_mode() is False
    assert nnx.set_graph_mode.current_value()


def test_the_switch_does_not_leak_into_another_thread() -> None:
    seen: list[bool] = []
    with nnx.set_graph_mode(False):
        worker = threading.Thread(target=lambda: seen.append(nnx.set_graph_mode.current_value()))
        worker.start()
        worker.join()
    assert seen == [True]


def test_set_graph_updates_works_the_same_three_ways() -> None:
    with nnx.set_graph_updates(False):
        assert not nnx.set_graph_updates.current_value()
    assert nnx.set_graph_updates.current_value()

    @nnx.set_graph_updates(False)
    def inside() -> bool:
        return nnx.set_graph_updates.current_value()

    assert inside() is False and nnx.set_graph_updates.current_value()


@pytest.mark.parametrize("bad", [0, 1, "False", None])
def test_a_switch_that_is_not_a_bool_is_refused_and_changes_nothing(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"nnx\.set_graph_mode takes True or False"):
        nnx.set_graph_mode(bad)
    with pytest.raises(TypeError, match=r"nnx\.set_graph_updates takes True or False"):
        nnx.set_graph_updates(bad)
    assert nnx.set_graph_mode.current_value() and nnx.set_graph_updates.current_value()


def test_graph_and_graph_updates_arguments_must_be_bools() -> None:
    with pytest.raises(TypeError, match=r"graph= takes True or False; got 'yes'"):
        nnx.split(untied(), graph="yes")  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]
    with pytest.raises(TypeError, match=r"graph_updates= takes True or False; got 1"):
        nnx.jit(lambda m: m, graph_updates=1)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue, reportArgumentType]


# -- the graph functions -----------------------------------------------------------

GraphCall = Callable[[Any, "bool | None"], Any]

GRAPH_FUNCTIONS: dict[str, GraphCall] = {
    "split": lambda m, g: nnx.split(m, graph=g),
    "state": lambda m, g: nnx.state(m, graph=g),
    "graphdef": lambda m, g: nnx.graphdef(m, graph=g),
    "clone": lambda m, g: nnx.clone(m, graph=g),
    "iter_graph": lambda m, g: list(nnx.iter_graph(m, graph=g)),
    "iter_modules": lambda m, g: list(nnx.iter_modules(m, graph=g)),
    "recursive_map": lambda m, g: nnx.recursive_map(lambda path, node: node, m, graph=g),
    "with_attributes": lambda m, g: nnx.with_attributes(m, graph=g),
}
#: What Flax's nnx.compat holds of these (with_attributes has no graph-mode spelling there).
COMPAT_GRAPH_FUNCTIONS = sorted(set(GRAPH_FUNCTIONS) - {"with_attributes"})


@pytest.mark.parametrize("name", sorted(GRAPH_FUNCTIONS))
def test_tree_mode_refuses_a_shared_submodule_naming_both_paths(name: str) -> None:
    model = tied()
    before = leaves_of(model)
    with pytest.raises(ValueError) as raised:
        GRAPH_FUNCTIONS[name](model, False)
    message = str(raised.value)
    assert named_paths(message) == ("a", "b")
    assert f"nnx.{name}: tree mode" in message and "Linear" in message
    assert "graph=True" in message and "nnx.compat" in message  # says what to do instead
    assert model.a is model.b  # nothing changed
    for now, then in zip(leaves_of(model), before, strict=True):
        np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize("name", sorted(GRAPH_FUNCTIONS))
def test_tree_mode_gives_a_tree_the_graph_mode_result(name: str) -> None:
    model = untied()
    assert_same_result(GRAPH_FUNCTIONS[name](model, True), GRAPH_FUNCTIONS[name](model, False))


def test_tree_mode_names_a_shared_variable_inside_containers() -> None:
    class Holder(nnx.Module):
        def __init__(self) -> None:
            w = nnx.Param(jnp.ones(2))
            self.layers = nnx.List([nnx.Dict({"w": w}), (jnp.zeros(1), w)])

    with pytest.raises(ValueError, match="Param \\(a Variable\\)") as raised:
        nnx.split(Holder(), graph=False)
    assert named_paths(str(raised.value)) == ("layers.0.w", "layers.1.1")


def test_tree_mode_refuses_a_cycle_and_says_so() -> None:
    class Node(nnx.Module):
        pass

    root, child = Node(), Node()
    setattr(root, "child", child)
    setattr(child, "parent", root)  # undeclared attributes: a cycle back to the root
    with pytest.raises(ValueError, match="a cycle") as raised:
        nnx.graphdef(root, graph=False)
    assert named_paths(str(raised.value)) == ("<root>", "child.parent")
    nnx.graphdef(root)  # graph mode keeps cycles


def test_shared_arrays_are_values_and_allowed_in_tree_mode() -> None:
    class TwoArrays(nnx.Module):
        def __init__(self, x: jax.Array) -> None:
            self.p = x
            self.q = x

    x = jnp.arange(3.0)
    _, state = nnx.split(TwoArrays(x), graph=False)
    np.testing.assert_array_equal(state.p, state.q)


@SETTINGS
@given(case=graphs())
def test_tree_mode_raises_exactly_when_an_independent_walk_finds_sharing(case: Case) -> None:
    """On random graphs (shared submodules and cells, cycles, containers): tree mode
    raises iff something is reached at two locations, names two of its locations,
    and otherwise splits exactly as graph mode does."""
    walk = analyze(case.root)
    classes = [{path_str(p) for p in group} for group in walk.sharing_classes() if len(group) > 1]
    if classes:
        with pytest.raises(ValueError) as raised:
            nnx.split(case.root, graph=False)
        first, second = named_paths(str(raised.value))
        assert first != second
        assert any({first, second} <= group for group in classes)
    else:
        graphdef, state = nnx.split(case.root, graph=False)
        expected_graphdef, expected_state = nnx.split(case.root)
        assert graphdef == expected_graphdef
        assert list(state.flat_state()) == list(expected_state.flat_state())


# -- the transforms ---------------------------------------------------------------


def run_jit(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.jit(lambda m1, m2: m2(m1(jnp.ones(2))), graph=g)(a, b)


def run_grad(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.grad(lambda m1, m2: jnp.sum(m2(m1(jnp.ones(2)))), graph=g)(a, b)


def run_value_and_grad(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.value_and_grad(lambda m1, m2: jnp.sum(m2(m1(jnp.ones(2)))), graph=g)(a, b)


def run_vmap(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.vmap(lambda m1, m2, x: m2(m1(x)), in_axes=(None, None, 0), graph=g)(a, b, jnp.ones((3, 2)))


def run_scan(g: bool | None, a: Any, b: Any) -> Any:
    def step(m1: nnx.Linear, m2: nnx.Linear, x: jax.Array) -> jax.Array:
        return m2(m1(x))

    return nnx.scan(step, in_axes=(None, None, 0), out_axes=0, graph=g)(a, b, jnp.ones((3, 2)))


def run_remat(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.remat(lambda m1, m2: m2(m1(jnp.ones(2))), graph=g)(a, b)


def run_cond(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.cond(True, lambda m1, m2: m2(m1(jnp.ones(2))), lambda m1, m2: m1(jnp.ones(2)), a, b, graph=g)


def run_switch(g: bool | None, a: Any, b: Any) -> Any:
    branches = [lambda m1, m2: m1(jnp.ones(2)), lambda m1, m2: m2(m1(jnp.ones(2)))]
    return nnx.switch(1, branches, a, b, graph=g)


def run_fori_loop(g: bool | None, a: Any, b: Any) -> Any:
    def body(i: Any, pair: tuple[Any, Any]) -> tuple[Any, Any]:
        pair[0].bias.value += 1.0
        return pair

    nnx.fori_loop(0, 2, body, (a, b), graph=g)
    return a.bias.value


def run_while_loop(g: bool | None, a: Any, b: Any) -> Any:
    def body(pair: tuple[Any, Any]) -> tuple[Any, Any]:
        pair[1].bias.value += 1.0
        return pair

    nnx.while_loop(lambda pair: pair[1].bias.value[0] < 2.0, body, (a, b), graph=g)
    return b.bias.value


def run_eval_shape(g: bool | None, a: Any, b: Any) -> Any:
    # eval_shape passes fun's own keywords through (a ParamSpec), so to the checkers `graph=`
    # is one of fun's; at run time eval_shape keeps it, as Flax's does.
    eval_shape: Callable[..., Any] = nnx.eval_shape
    return eval_shape(lambda m1, m2: m2(m1(jnp.ones(2))), a, b, graph=g)


def run_vjp(g: bool | None, a: Any, b: Any) -> Any:
    value, vjp_fn = nnx.vjp(lambda m1, m2: jnp.sum(m2(m1(jnp.ones(2)))), a, b, graph=g)
    return value, vjp_fn(jnp.ones(()))


def run_jvp(g: bool | None, a: Any, b: Any) -> Any:
    tangents = tuple(jax.tree.map(jnp.ones_like, nnx.state(m)) for m in (a, b))  # a Linear: all Params
    return nnx.jvp(lambda m1, m2: m2(m1(jnp.ones(2))), (a, b), tangents, graph=g)


def run_shard_map(g: bool | None, a: Any, b: Any) -> Any:
    mesh = jax.make_mesh((1,), ("x",))
    spec = partition_spec()
    return nnx.shard_map(lambda m1, m2: m2(m1(jnp.ones(2))), mesh=mesh, in_specs=spec, out_specs=spec, graph=g)(a, b)


def run_pmap(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.pmap(lambda m1, m2, x: m2(m1(x)), in_axes=(None, None, 0), graph=g)(a, b, jnp.ones((1, 2)))


def run_jit_partial(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.jit_partial(lambda m1, m2, x: m2(m1(x)), a, graph=g)(b, jnp.ones(2))


def run_custom_vjp(g: bool | None, a: Any, b: Any) -> Any:
    def f(m1: Any, m2: Any) -> jax.Array:
        return jnp.sum(m2(m1(jnp.ones(2))))

    def f_fwd(m1: Any, m2: Any) -> tuple[jax.Array, None]:
        return f(m1, m2), None

    def f_bwd(res: None, g: Any) -> tuple[None, None]:
        return None, None

    custom = nnx.custom_vjp(f, graph=g)
    custom.defvjp(f_fwd, f_bwd)
    return custom(a, b)


def run_checkify(g: bool | None, a: Any, b: Any) -> Any:
    return nnx.checkify(lambda m1, m2: m2(m1(jnp.ones(2))), graph=g)(a, b)[1]


def run_make_jaxpr(g: bool | None, a: Any, b: Any) -> Any:
    return str(nnx.make_jaxpr(lambda m1, m2: m2(m1(jnp.ones(2))), graph=g)(a, b))


TRANSFORMS: dict[str, Callable[[bool | None, Any, Any], Any]] = {
    name.removeprefix("run_"): f for name, f in globals().items() if name.startswith("run_")
}


def test_every_transform_is_covered() -> None:
    assert set(TRANSFORMS) == {
        "jit", "grad", "value_and_grad", "vmap", "scan", "remat", "cond", "switch", "fori_loop", "while_loop",
        "eval_shape", "vjp", "jvp", "shard_map", "pmap", "jit_partial", "custom_vjp", "checkify", "make_jaxpr",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_tree_mode_transform_refuses_the_same_module_in_two_arguments(name: str) -> None:
    layer = linear()
    before = leaves_of(layer)
    with pytest.raises(ValueError) as raised:
        TRANSFORMS[name](False, layer, layer)
    message = str(raised.value)
    assert f"nnx.{name}: tree mode" in message
    expected = ("args[0][0]", "args[0][1]") if name.endswith("loop") else ("args[0]", "args[1]")  # loops: one carry
    assert named_paths(message) == expected
    for now, then in zip(leaves_of(layer), before, strict=True):  # the caller's objects as they were
        np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_tree_mode_transform_gives_the_graph_mode_result_on_a_tree(name: str) -> None:
    assert_same_result(TRANSFORMS[name](True, linear(0), linear(1)), TRANSFORMS[name](False, linear(0), linear(1)))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_graph_mode_transform_keeps_sharing_even_under_a_tree_mode_switch(name: str) -> None:
    layer = linear()
    with nnx.set_graph_mode(False):
        TRANSFORMS[name](True, layer, layer)  # graph=True beats the switch


def test_tree_mode_finds_sharing_inside_pytree_arguments_and_keywords() -> None:
    layer = linear()
    f = nnx.jit(lambda pair, other: other(jnp.ones(2)), graph=False)
    with pytest.raises(ValueError) as raised:
        f({"enc": layer, "dec": linear(1)}, other=layer)
    assert named_paths(str(raised.value)) == ("args[0]['enc']", "kwargs['other']")


def test_a_jitted_function_made_in_tree_mode_checks_again_after_the_structure_changes() -> None:
    model = untied()
    step = nnx.jit(lambda m: m(jnp.ones(2)), graph=False)
    step(model)
    step(model)  # the fast path: same objects, no structural change
    model.b = model.a  # now shared
    with pytest.raises(ValueError, match='found at paths "args\\[0\\].a" and "args\\[0\\].b"'):
        step(model)


def test_the_mode_of_a_transform_is_decided_when_it_is_made() -> None:
    with nnx.set_graph_mode(False):
        made_in_tree_mode = nnx.jit(lambda m: m(jnp.ones(2)))
    made_in_graph_mode = nnx.jit(lambda m: m(jnp.ones(2)))
    model = tied()
    made_in_graph_mode(model)
    with pytest.raises(ValueError, match="found at paths"):
        made_in_tree_mode(model)


@pytest.mark.parametrize("graph_updates", [True, False, None])
def test_graph_updates_is_accepted_and_updates_come_back_either_way(graph_updates: bool | None) -> None:
    class Counter(nnx.Module):
        def __init__(self) -> None:
            self.count = nnx.BatchStat(jnp.array(0))

    def step(m: Counter) -> None:
        m.count.value += 1
        setattr(m, "extra", nnx.Param(jnp.ones(1)))  # a structural change

    counter = Counter()
    nnx.jit(step, graph_updates=graph_updates)(counter)
    assert int(counter.count.value) == 1
    assert isinstance(vars(counter)["extra"], nnx.Param)


def test_eval_shape_keeps_graph_keywords_for_itself() -> None:
    def build(*, graph: int = 7) -> jax.Array:  # a function that happens to take `graph`
        return jnp.zeros(graph)

    assert nnx.eval_shape(build).shape == (7,)
    eval_shape: Callable[..., Any] = nnx.eval_shape  # `graph=` is fun's keyword to the checkers
    assert eval_shape(build, graph=False).shape == (7,)  # taken by eval_shape, as in Flax


# -- nnx.compat -------------------------------------------------------------------


def test_compat_holds_flax_graph_mode_namespace_and_not_the_seed_aliases() -> None:
    assert set(nnx.compat.__all__) == {*COMPAT_GRAPH_FUNCTIONS, *TRANSFORMS}
    assert not hasattr(nnx.compat, "Module")
    assert nnx.seed_compat.Module is nnx.Module
    assert nnx.seed_compat.context is nnx.context


@pytest.mark.parametrize("name", COMPAT_GRAPH_FUNCTIONS)
def test_compat_graph_functions_keep_sharing_under_tree_mode(name: str) -> None:
    fun: Callable[..., Any] = getattr(nnx.compat, name)
    model = tied()
    nnx.set_graph_mode(False)
    if name == "recursive_map":
        result = fun(lambda path, node: node, model)
    else:
        result = fun(model)
    expected = GRAPH_FUNCTIONS[name](model, True)
    if name in ("iter_graph", "iter_modules"):
        assert [p for p, _ in result] == [p for p, _ in expected]


def test_compat_transforms_keep_sharing_under_tree_mode() -> None:
    layer = linear()
    nnx.set_graph_mode(False)
    y = nnx.compat.jit(lambda a, b: b(a(jnp.ones(2))))(layer, layer)
    grads = nnx.compat.grad(lambda a, b: jnp.sum(b(a(jnp.ones(2)))))(layer, layer)
    nnx.set_graph_mode(True)
    np.testing.assert_allclose(y, layer(layer(jnp.ones(2))), rtol=1e-6)
    assert grads.kernel.shape == (2, 2)
    with pytest.raises(ValueError, match="found at paths"):
        nnx.compat.jit(lambda a, b: a, graph=False)(layer, layer)  # an explicit keyword still wins


def test_remat_is_also_a_decorator_factory_taking_the_mode() -> None:
    @nnx.remat(graph=False, policy=None)
    def forward(m: nnx.Linear, x: jax.Array) -> jax.Array:
        return jnp.sum(jnp.tanh(m(x)))

    layer, x = linear(), jnp.arange(2.0)
    grads = nnx.grad(forward)(layer, x)
    expected = nnx.grad(lambda m, x: jnp.sum(jnp.tanh(m(x))))(layer, x)
    np.testing.assert_allclose(grads.kernel, expected.kernel, rtol=1e-6)
    with pytest.raises(ValueError, match="nnx.remat: tree mode"):
        nnx.remat(graph=False)(lambda a, b: a(x))(layer, layer)


def test_jit_partial_in_tree_mode_checks_its_bound_arguments_when_made() -> None:
    layer = linear()
    with pytest.raises(ValueError, match=r'nnx.jit_partial: tree mode.*found at paths "args\[0\]" and "args\[1\]" \(Duplicate Linear\)'):
        nnx.jit_partial(lambda a, b, x: b(a(x)), layer, layer, graph=False)
