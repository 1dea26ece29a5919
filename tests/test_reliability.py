"""Reliability under misuse (issue 14): no tracer escapes into a captured module,
a transform that raises changes nothing, untouched buffers keep their type,
structural bookkeeping is thread-safe, and bad input is refused where it enters.
"""
# pyright: reportUnknownLambdaType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false, reportUnknownMemberType=false

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.core import Tracer
from hypothesis import given
from hypothesis import strategies as st

import nnx
from nnx import epoch
from test_properties import SETTINGS, Case, analyze, assert_same_graph, graphs


# -- tracers never leak into a module captured by a closure ----------------------


class Holder(nnx.Module):
    w: jax.Array = nnx.param()
    items: nnx.List[Any]
    table: nnx.Dict[str, Any]
    note: Any  # set by some tests
    tmp: Any

    def __init__(self) -> None:
        self.w = jnp.ones(2)
        self.items = nnx.List([jnp.zeros(2)])
        self.table = nnx.Dict({"a": jnp.zeros(2)})
        self.buf = jnp.zeros(2)
        self.p = nnx.Param(jnp.zeros(2))


class Inner(nnx.Module):
    def __init__(self, x: jax.Array) -> None:
        self.v = nnx.Param(x)


def _update_buffer(m: Holder, x: jax.Array) -> None:
    state = nnx.state(m, nnx.buffers)
    nnx.update(m, jax.tree.map(lambda v: v + x, state))


#: Every way of storing a value into a graph object; each stores something derived from ``x``.
STORES: dict[str, Callable[[Holder, jax.Array], Any]] = {
    "List.append": lambda m, x: m.items.append(x),
    "List.extend": lambda m, x: m.items.extend([x]),
    "List.insert": lambda m, x: m.items.insert(0, x),
    "List[i] =": lambda m, x: m.items.__setitem__(0, x),
    "List[:] =": lambda m, x: m.items.__setitem__(slice(0, 1), [x]),
    "List +=": lambda m, x: m.items.__iadd__([x]),
    "List.append(tuple)": lambda m, x: m.items.append((1, x)),
    "Dict[k] =": lambda m, x: m.table.__setitem__("b", x),
    "Dict.update": lambda m, x: m.table.update(b=x),
    "Dict.setdefault": lambda m, x: m.table.setdefault("c", x),
    "Dict |=": lambda m, x: m.table.__ior__({"d": x}),
    "list attribute": lambda m, x: setattr(m, "lst", [x]),
    "tuple attribute": lambda m, x: setattr(m, "tup", (1, x)),
    "dict attribute": lambda m, x: setattr(m, "dct", {"k": [x]}),
    "array attribute": lambda m, x: setattr(m, "buf", x),
    "new Param attribute": lambda m, x: setattr(m, "q", nnx.Param(x)),
    "declared field adopts a cell": lambda m, x: setattr(m, "w", nnx.Param(x)),
    "declared field value": lambda m, x: setattr(m, "w", x),
    "Variable.value": lambda m, x: setattr(m.p, "value", x),
    "submodule made inside": lambda m, x: setattr(m, "sub", Inner(x)),
    "sow (new)": lambda m, x: m.sow(nnx.Intermediate, "seen", x),
    "nnx.update into an array attribute": _update_buffer,
    "set_metadata": lambda m, x: nnx.cell(m, "w").set_metadata(scale=x),
}


def _scalar_fn(store: Callable[[Holder, jax.Array], Any], m: Holder) -> Callable[[jax.Array], jax.Array]:
    def fn(x: jax.Array) -> jax.Array:
        store(m, x * 2)
        return jnp.sum(x)

    return fn


#: The transforms, each turned into "run fn(x) under it".
TRANSFORMS: dict[str, Callable[[Callable[[jax.Array], jax.Array], jax.Array], Any]] = {
    "jax.jit": lambda f, x: jax.jit(f)(x),
    "jax.vmap": lambda f, x: jax.vmap(f)(jnp.stack([x, x])),
    "jax.grad": lambda f, x: jax.grad(f)(x),
    "nnx.jit": lambda f, x: nnx.jit(f)(x),
    "nnx.vmap": lambda f, x: nnx.vmap(f)(jnp.stack([x, x])),
    "nnx.grad": lambda f, x: nnx.grad(f)(x),
}


def _fingerprint(m: Holder) -> Any:
    graphdef, state = nnx.split(m)
    leaves = [(type(v).__name__, np.asarray(v).tolist()) for v in jax.tree.leaves(state)]
    return graphdef, leaves, nnx.cell(m, "w").metadata


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("store", list(STORES))
def test_storing_a_tracer_into_a_captured_module_is_refused(transform: str, store: str) -> None:
    m = Holder()
    before = _fingerprint(m)
    with pytest.raises(nnx.TraceContextError, match="outside the JAX"):
        TRANSFORMS[transform](_scalar_fn(STORES[store], m), jnp.ones(2))
    # Refused before anything was stored: the module is as it was, and still usable.
    after = _fingerprint(m)
    assert after[0] == before[0] and after[1] == before[1] and after[2] == before[2]
    assert not any(isinstance(v, Tracer) for v in jax.tree.leaves(nnx.state(m)))


def _store_somewhere(case: Case, draw: Any, x: jax.Array) -> None:
    """Store something holding ``x`` into a random node of the generated graph."""
    targets: list[Any] = [*case.mods, *case.containers]
    target = draw(st.sampled_from(targets))
    wrap = draw(st.sampled_from(["bare", "list", "tuple", "dict", "cell", "module"]))
    value: Any = {
        "bare": x,
        "list": [1, x],
        "tuple": ("a", x),
        "dict": {"k": (x,)},
        "cell": nnx.BatchStat(x),
        "module": Inner(x),
    }[wrap]
    if isinstance(target, nnx.List):
        how = draw(st.sampled_from(["append", "insert", "extend", "setitem"]))
        if how == "setitem" and len(target):
            target[0] = value
        elif how == "extend":
            target.extend([value])
        elif how == "insert":
            target.insert(0, value)
        else:
            target.append(value)
    elif isinstance(target, nnx.Dict):
        how = draw(st.sampled_from(["setitem", "update", "setdefault"]))
        if how == "update":
            target.update(new=value)
        elif how == "setdefault":
            target.setdefault("fresh", value)
        else:
            target["new"] = value
    else:
        setattr(target, draw(st.sampled_from(["a", "fresh", "e"])), value)


@SETTINGS
@given(case=graphs(), data=st.data(), transform=st.sampled_from(["jax.jit", "jax.vmap", "jax.grad", "nnx.jit"]))
def test_no_store_path_leaks_a_tracer_into_a_random_graph(case: Case, data: st.DataObject, transform: str) -> None:
    before = analyze(case.root)

    def fn(x: jax.Array) -> jax.Array:
        _store_somewhere(case, data.draw, x * 2)
        return jnp.sum(x)

    with pytest.raises(nnx.TraceContextError):
        TRANSFORMS[transform](fn, jnp.ones(2))
    assert_same_graph(analyze(case.root), before)


@pytest.mark.parametrize("store", list(STORES))
def test_the_same_stores_inside_a_transform_on_its_own_argument_work(store: str) -> None:
    """The check refuses only foreign traces: a module passed to nnx.jit may be changed."""
    m = Holder()

    @nnx.jit
    def fn(m: Holder, x: jax.Array) -> None:
        STORES[store](m, x * 2)

    fn(m, jnp.ones(2))
    assert not any(isinstance(v, Tracer) for v in jax.tree.leaves(nnx.state(m)))


def test_nnx_jit_inside_jax_jit_does_not_land_tracers_in_a_captured_array_attribute() -> None:
    class Buffers(nnx.Module):
        def __init__(self) -> None:
            self.buf = jnp.zeros(2)

    m = Buffers()

    @nnx.jit
    def step(m: Buffers, x: jax.Array) -> None:
        m.buf = m.buf + x

    with pytest.raises(nnx.TraceContextError):
        jax.jit(lambda x: (step(m, x), x)[1])(jnp.ones(2))
    assert isinstance(m.buf, jax.Array) and not isinstance(m.buf, Tracer)


def test_storing_concrete_values_from_a_trace_is_still_allowed() -> None:
    """Only tracers are refused: a closure may record static facts on a captured module."""
    m = Holder()

    def fn(x: jax.Array) -> jax.Array:
        m.items.append("seen")
        m.table["shape"] = tuple(x.shape)
        m.note = [1, 2]
        return x

    jax.jit(fn)(jnp.ones(2))
    assert m.items[-1] == "seen" and m.table["shape"] == (2,) and list(m.note) == [1, 2]


# -- a transform that raises leaves the caller's objects as they were ----------------


class Noisy(nnx.Module):
    def __init__(self) -> None:
        self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(dropout=0))
        self.count = nnx.BatchStat(jnp.zeros(()))
        self.buf = np.arange(3.0)

    def __call__(self, x: jax.Array) -> jax.Array:
        self.count.value = self.count.value + 1
        self.extra = nnx.Param(jnp.ones(()))  # a structural change too, where allowed
        return self.drop(x)


class Boom(Exception):
    pass


def _use_then_raise(m: Noisy, x: jax.Array) -> Any:
    m(x)
    raise Boom("inside")


def _use_then_raise_no_structure(m: Noisy, x: jax.Array) -> Any:
    m.count.value = m.count.value + 1
    m.drop(x)
    raise Boom("inside")


def _rngs(m: Noisy) -> nnx.RngStream:
    stream = m.drop.rngs
    assert stream is not None
    return stream


def _draw_then_raise(carry: jax.Array, stream: nnx.RngStream, x: jax.Array) -> Any:
    stream()
    raise Boom("inside")


X = jnp.ones((4, 3))

FAILING_CALLS: dict[str, Callable[[Noisy], Any]] = {
    "jit": lambda m: nnx.jit(_use_then_raise)(m, X),
    "grad": lambda m: nnx.grad(lambda m, x: jnp.sum(_use_then_raise(m, x)))(m, X),
    "value_and_grad": lambda m: nnx.value_and_grad(lambda m, x: jnp.sum(_use_then_raise(m, x)))(m, X),
    "vmap in_axes=(None, 0)": lambda m: nnx.vmap(_use_then_raise_no_structure, in_axes=(None, 0))(m, X),
    "vmap in_axes=(None, 0) failing at the end": lambda m: nnx.vmap(
        lambda m, x: (m.drop(x), m.count.value)[0], in_axes=(None, 0), out_axes=(1, 2, 3)
    )(m, X),
    "scan": lambda m: nnx.scan(
        lambda c, m, x: (_use_then_raise_no_structure(m, x), c), in_axes=(nnx.Carry, None, 0)
    )(jnp.zeros(()), m, X),
    "scan over forked rngs": lambda m: nnx.scan(_draw_then_raise, in_axes=(nnx.Carry, 0, 0), length=4)(
        jnp.zeros(()), _rngs(m), X
    ),
    "cond": lambda m: nnx.cond(True, _use_then_raise_no_structure, _use_then_raise_no_structure, m, X[0]),
    "switch": lambda m: nnx.switch(1, [_use_then_raise_no_structure] * 2, m, X[0]),
    "fori_loop": lambda m: nnx.fori_loop(0, 2, lambda i, m: _use_then_raise_no_structure(m, X[0]), m),
    "while_loop": lambda m: nnx.while_loop(lambda m: True, lambda m: _use_then_raise_no_structure(m, X[0]), m),
    "remat": lambda m: nnx.remat(_use_then_raise)(m, X),
    "eval_shape": lambda m: nnx.eval_shape(_use_then_raise, m, X),
}


def _plain(v: Any) -> Any:
    if jnp.issubdtype(v.dtype, jax.dtypes.prng_key):
        v = jax.random.key_data(v)
    return type(v), np.asarray(v).dtype, np.asarray(v).tolist()


def _snapshot(m: Noisy) -> Any:
    graphdef, state = nnx.split(m)
    return graphdef, [_plain(v) for v in jax.tree.leaves(state)]


def _dropout_count(m: Noisy) -> int:
    return int(_rngs(m).count.value)


@pytest.mark.parametrize("name", list(FAILING_CALLS))
def test_a_transform_that_raises_changes_nothing(name: str) -> None:
    m = Noisy()
    nnx.jit(lambda m: m.drop(X))(m)  # the stream has been used: its count is not at its initial value
    before = _snapshot(m)
    count_before = _dropout_count(m)
    assert count_before == 1
    with pytest.raises(Exception):
        FAILING_CALLS[name](m)
    assert _dropout_count(m) == count_before
    assert _snapshot(m) == before
    assert "extra" not in vars(m)


def test_vmap_broadcast_rngs_advance_once_on_success() -> None:
    """The fix keeps the success path: a forked stream advances by exactly one draw."""
    m = Noisy()
    nnx.vmap(lambda m, x: m.drop(x), in_axes=(None, 0))(m, X)
    assert _dropout_count(m) == 1


# -- untouched NumPy buffers keep their type through a structural change ---------------


OPS = st.lists(
    st.tuples(st.sampled_from(["add_param", "delete", "scale_buffer", "new_buffer"]), st.sampled_from(["a", "b", "z"])),
    min_size=1,
    max_size=4,
)


def _run_ops(root: Any, ops: tuple[tuple[str, str], ...]) -> None:
    for op, name in ops:
        if op == "add_param":
            setattr(root, "added_" + name, nnx.Param(jnp.ones(2)))
        elif op == "delete" and name in vars(root):
            delattr(root, name)
        elif op == "scale_buffer":
            root.np64 = root.np64 * 2
        elif op == "new_buffer":
            setattr(root, "fresh_" + name, jnp.zeros(3))


def _numpy_leaves(root: Any) -> dict[Any, Any]:
    return {path: (v.dtype, v.tolist()) for path, v in nnx.state(root).flat_state().items() if isinstance(v, np.ndarray)}


def _lookup(root: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` by plain attribute/item access, or None if it is gone."""
    node = root
    for key in path:
        try:
            node = node[key] if isinstance(node, (list, tuple, dict)) else vars(node)[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node._value if isinstance(node, nnx.Variable) else node


@SETTINGS
@given(case=graphs(), ops=OPS, extra=st.lists(st.integers(0, 4), max_size=3))
def test_untouched_numpy_buffers_keep_type_and_dtype_under_jit(
    case: Case, ops: list[tuple[str, str]], extra: list[int]
) -> None:
    root = case.root
    setattr(root, "np64", np.arange(3, dtype=np.float64) / 3)
    for i in extra:  # more float64 buffers, elsewhere in the graph
        setattr(case.mods[i % len(case.mods)], f"buf{i}", np.linspace(0, 1, 4, dtype=np.float64))
    before = _numpy_leaves(root)
    nnx.jit(_run_ops, static_argnums=1)(root, tuple(ops))
    changed = {"np64"} if any(op == "scale_buffer" for op, _ in ops) else set()
    for path, (dtype, values) in before.items():
        now = _lookup(root, path)
        if path[0] in changed or now is None:
            continue
        assert type(now) is np.ndarray, f"{path}: a NumPy {dtype} buffer became {type(now).__name__}"
        assert now.dtype == dtype and now.tolist() == values, path


def test_float64_buffer_stays_numpy_after_adding_an_attribute_under_jit() -> None:
    class Net(nnx.Module):
        extra: nnx.Param[jax.Array]

        def __init__(self) -> None:
            self.w = nnx.Param(jnp.ones(2))
            self.table = np.arange(4, dtype=np.float64) / 3

    net = Net()

    @nnx.jit
    def grow(net: Net) -> None:
        net.extra = nnx.Param(net.w.value * 2)

    grow(net)
    assert type(net.table) is np.ndarray and net.table.dtype == np.float64
    np.testing.assert_array_equal(net.table, np.arange(4, dtype=np.float64) / 3)
    np.testing.assert_array_equal(net.extra.value, [2.0, 2.0])


# -- the structure epoch under threads ---------------------------------------------


class _SlowLog(deque[int]):
    """The epoch's log, with a thread switch offered inside every append: it widens the
    window between a bump's two halves (count and log entry) that a race needs."""

    def append(self, entry: int) -> None:
        time.sleep(0)
        super().append(entry)


@pytest.fixture
def slow_epoch_log(monkeypatch: pytest.MonkeyPatch) -> Any:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    monkeypatch.setattr(epoch, "_log", _SlowLog(epoch._log, maxlen=epoch._log.maxlen))
    yield
    sys.setswitchinterval(old)


def test_threads_changing_their_own_modules_never_see_stale_state(slow_epoch_log: None) -> None:
    errors: list[str] = []

    def work(seed: int) -> None:
        m = Holder()
        for i in range(100):
            m.tmp = nnx.Param(jnp.full((1,), float(seed)))
            if "tmp" not in nnx.state(m):
                errors.append(f"thread {seed}: added attribute missing at step {i}")
            del m.tmp
            if "tmp" in nnx.state(m):
                errors.append(f"thread {seed}: deleted attribute still present at step {i}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_concurrent_bumps_are_all_counted_and_logged(slow_epoch_log: None) -> None:
    start = epoch.current()
    n_threads, per_thread = 4, 500
    nodes = [object() for _ in range(n_threads)]

    def work(node: object) -> None:
        for _ in range(per_thread):
            epoch.bump(node)

    threads = [threading.Thread(target=work, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert epoch.current() - start == n_threads * per_thread
    for node in nodes:
        assert epoch.changed_since(start, {id(node)})


# -- bad input is refused where it enters, naming the path -----------------------


class Declared(nnx.Module):
    w: jax.Array = nnx.param()
    size: Any = nnx.static()

    def __init__(self) -> None:
        self.w = jnp.ones(2)
        self.size = 2


@pytest.mark.parametrize("bad", ["x", Holder(), object(), b"raw", np.array(["a", "b"])])
def test_non_array_values_are_refused_in_a_declared_param(bad: Any) -> None:
    m = Declared()
    with pytest.raises(TypeError, match=r"Declared\.w.*holds an array.*Accepted"):
        m.w = bad
    np.testing.assert_array_equal(m.w, jnp.ones(2))


@pytest.mark.parametrize("bad", ["x", Holder(), object(), ("ok", jnp.ones(1)), [object()]])
def test_non_array_values_are_refused_by_variables(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"nnx\.Param\(\.\.\.\).*holds an array"):
        nnx.Param(bad)
    cell = nnx.Param(jnp.zeros(2))
    with pytest.raises(TypeError, match=r"Param\.value.*holds an array"):
        cell.value = bad
    np.testing.assert_array_equal(cell.value, jnp.zeros(2))


@pytest.mark.parametrize(
    "good",
    [1, 2.5, True, 1j, np.float32(1), np.arange(3), jnp.ones(2), None, (jnp.ones(1), 2), {"a": [1.0]},
     jax.eval_shape(lambda: jnp.zeros(2))],
)
def test_array_like_values_are_accepted_by_variables(good: Any) -> None:
    cell = nnx.Variable(good)
    cell.value = good
    m = Declared()
    m.w = good
    assert m.w is good


def test_array_inside_a_list_in_a_static_field_is_refused_with_the_fix() -> None:
    m = Declared()
    for bad in ([jnp.ones(2)], (1, np.zeros(2)), {"k": [nnx.Param(jnp.ones(1))]}):
        with pytest.raises(TypeError, match=r"Declared\.size is declared nnx\.static\(\).*nnx\.param\(\)"):
            m.size = bad
        assert m.size == 2
    m.size = (3, "relu", [1, 2])  # plain values are fine
    assert nnx.graphdef(m) != nnx.graphdef(Declared())


class Two(nnx.Module):
    def __init__(self) -> None:
        self.w = nnx.Param(jnp.ones(2))
        self.s = nnx.BatchStat(jnp.zeros(2))


@pytest.mark.parametrize(
    "call",
    [
        lambda m: nnx.split(m, ..., nnx.Param),
        lambda m: nnx.state(m, ..., nnx.Param),
        lambda m: nnx.state(m).split(..., nnx.Param),
        lambda m: nnx.state(m).filter(True, nnx.BatchStat),
        lambda m: nnx.pop(m, ..., nnx.Param),
        lambda m: m.partition(..., nnx.Param),
    ],
)
def test_ellipsis_must_be_the_last_filter(call: Callable[[Two], Any]) -> None:
    m = Two()
    with pytest.raises(ValueError, match=r"`\.\.\.` \(everything\) must be the last filter"):
        call(m)
    assert set(nnx.state(m)) == {"w", "s"}  # nothing was popped


def test_ellipsis_last_still_collects_the_rest() -> None:
    _, params, rest = nnx.split(Two(), nnx.Param, ...)
    assert list(params) == ["w"] and list(rest) == ["s"]


@pytest.mark.parametrize("bad", [Holder(), nnx.Linear(2, 2, rngs=nnx.Rngs(0)), lambda path: True, 3, [nnx.Param]])
def test_a_non_filter_gives_a_clear_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="is not a filter"):
        nnx.state(Two(), bad)


def test_a_list_of_filters_says_to_use_a_tuple() -> None:
    with pytest.raises(TypeError, match="use a tuple, not a list"):
        nnx.state(Two(), [nnx.Param, nnx.BatchStat])  # type: ignore[nnx-filter]  # pyright: ignore[reportCallIssue, reportArgumentType]  # the error under test


def test_a_module_as_filter_says_how_to_select_its_state() -> None:
    with pytest.raises(TypeError, match=r"A module is not a filter.*first argument"):
        nnx.split(Two(), Holder(), ...)  # type: ignore[nnx-filter]  # pyright: ignore[reportCallIssue, reportArgumentType]  # the error under test


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "named"),
    [
        ((1.5,), {}, TypeError, "'default'"),
        (("abc",), {}, TypeError, "'default'"),
        (([1, 2],), {}, TypeError, "'default'"),
        ((), {"dropout": None}, TypeError, "'dropout'"),
        ((0,), {"params": "x"}, TypeError, "'params'"),
        ((2**70,), {}, ValueError, "'default'"),
        ((), {"dropout": -(2**64)}, ValueError, "'dropout'"),
        ((True,), {}, TypeError, "'default'"),
    ],
)
def test_bad_rngs_seeds_name_the_argument(args: tuple[Any, ...], kwargs: dict[str, Any], error: type, named: str) -> None:
    with pytest.raises(error, match=f"stream {named}.*") as info:
        nnx.Rngs(*args, **kwargs)
    assert "int seed" in str(info.value)


@pytest.mark.parametrize("seed", [0, 2**63 - 1, -(2**63), np.int64(5), jnp.uint32(7), jax.random.key(1)])
def test_good_rngs_seeds_still_work(seed: Any) -> None:
    rngs = nnx.Rngs(seed, dropout=seed)
    assert rngs.dropout().shape == ()
