"""Variables, kinds, collections and declared fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnx
from typed_jax import jit


class Count(nnx.Variable[jax.Array]):
    pass


class Tally(nnx.Variable[jax.Array], collection="tallies"):
    pass


def test_collection_names() -> None:
    assert nnx.Param.collection == "params"
    assert nnx.BatchStat.collection == "batch_stats"
    assert nnx.Cache.collection == "cache"
    assert nnx.Intermediate.collection == "intermediates"
    assert Count.collection == "count"
    assert Tally.collection == "tallies"


def test_variable_behaves_like_its_array() -> None:
    w = nnx.Param(jnp.arange(6.0).reshape(2, 3))
    x = jnp.ones((3,))
    np.testing.assert_allclose(w @ x, jnp.arange(6.0).reshape(2, 3) @ x)
    np.testing.assert_allclose(w + 1, jnp.arange(6.0).reshape(2, 3) + 1)
    np.testing.assert_allclose(2 * w, 2 * jnp.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(w[1], jnp.array([3.0, 4.0, 5.0]))
    np.testing.assert_allclose(jnp.asarray(w), w.value)
    assert w.shape == (2, 3) and w.dtype == jnp.float32
    assert bool(jnp.all(w == w.value))


def test_inplace_operator_updates_the_same_cell() -> None:
    c = Count(jnp.array(1))
    alias = c
    c += 2
    assert c is alias
    assert int(alias.value) == 3


def test_metadata_is_carried_and_survives_tree_map() -> None:
    w = nnx.Param(jnp.ones((2, 2)), sharding=("embed", "mlp"))
    assert w.metadata["sharding"] == ("embed", "mlp")
    assert w.get_metadata("sharding") == ("embed", "mlp")
    # As in Flax, the ``.sharding`` attribute is the array's placement, not the axis names.
    assert w.sharding == w.get_raw_value().sharding

    def double(a: jax.Array) -> jax.Array:
        return a * 2

    doubled: nnx.Variable[jax.Array] = jax.tree.map(double, w)
    assert isinstance(doubled, nnx.Param)
    assert doubled.metadata == {"sharding": ("embed", "mlp")}
    np.testing.assert_allclose(doubled.value, 2.0)
    with pytest.raises(AttributeError, match="metadata keys"):
        w.shardng  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]  # noqa: B018  # under test


class Linear(nnx.Module):
    w: jax.Array = nnx.param()
    b: jax.Array = nnx.param()
    din: int = nnx.static()

    def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs) -> None:
        self.din = din
        self.w = jax.random.uniform(rngs.params(), (din, dout))
        self.b = jnp.zeros((dout,))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w + self.b


def test_declared_field_reads_value_and_writes_into_cell() -> None:
    m = Linear(3, 2, rngs=nnx.Rngs(0))
    assert isinstance(m.w, jax.Array)
    cell: nnx.Variable[jax.Array] = nnx.cell(m, "w")
    assert isinstance(cell, nnx.Param)
    m.w = jnp.zeros((3, 2))
    assert nnx.cell(m, "w") is cell
    np.testing.assert_allclose(cell.value, 0.0)


def test_declared_field_shared_cell_sees_writes() -> None:
    a = Linear(3, 2, rngs=nnx.Rngs(0))
    b = Linear(3, 2, rngs=nnx.Rngs(1))
    b.w = nnx.cell(a, "w")  # adopt a's cell
    a.w = jnp.full((3, 2), 7.0)
    np.testing.assert_allclose(b.w, 7.0)
    assert nnx.cell(a, "w") is nnx.cell(b, "w")


def test_declared_field_rejects_wrong_kind_and_reports_unset() -> None:
    m = Linear(3, 2, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"Linear\.w is declared as Param but was assigned a BatchStat"):
        m.w = nnx.BatchStat(jnp.zeros((3, 2)))  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]  # under test
    assert isinstance(nnx.cell(m, "w"), nnx.Param)  # nothing changed

    class Lazy(nnx.Module):
        w: jax.Array = nnx.param()

    with pytest.raises(TypeError, match=r"Lazy\.w is declared as a Param field but Lazy\.__init__ never assigned it"):
        Lazy()  # the metaclass checks construction (tests/test_metaclass.py)

    class Assigned(nnx.Module):
        w: jax.Array = nnx.param()

        def __init__(self) -> None:
            self.w = jnp.ones(2)

    later = Assigned()
    del later.w
    with pytest.raises(AttributeError, match=r"Assigned\.w is declared but was never assigned"):
        later.w  # noqa: B018


def test_static_field_refuses_arrays() -> None:
    m = Linear(3, 2, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"Linear\.din is declared nnx.static\(\)"):
        m.din = jnp.array(3)  # type: ignore[assignment]  # pyright: ignore[reportAttributeAccessIssue]  # under test
    assert m.din == 3


def test_fields_are_recorded_per_class_with_inheritance() -> None:
    class Base(nnx.Module):
        w: jax.Array = nnx.param()
        n: int = nnx.static()

    class Child(Base):
        mean: jax.Array = nnx.batch_stat()
        c: jax.Array = nnx.variable(Count)

    assert set(Base.__nnx_fields__) == {"w", "n"}
    assert set(Child.__nnx_fields__) == {"w", "n", "mean", "c"}
    field = Child.__nnx_fields__["c"]
    assert isinstance(field, nnx.VariableField) and field.kind is Count


def test_ref_field_by_collection_name_and_unknown_collection() -> None:
    class Old(nnx.Module):
        w = nnx.ref("params")

        def __init__(self) -> None:
            self.w = jnp.ones(2)

    assert isinstance(nnx.cell(Old(), "w"), nnx.Param)
    with pytest.raises(ValueError, match=r"unknown collection 'parmas'.*'params'"):
        nnx.ref("parmas")  # type: ignore[nnx-collection]  # the run-time error under test


def test_trace_safety_foreign_write_raises_and_changes_nothing() -> None:
    m = Linear(3, 2, rngs=nnx.Rngs(0))
    before = np.asarray(m.w)

    @jit
    def bad(x: jax.Array) -> jax.Array:
        m.w = m.w + x  # mutating a closure-captured module inside plain jax.jit
        return x

    with pytest.raises(nnx.TraceContextError, match="nnx.jit|nnx.split"):
        bad(jnp.asarray(1.0))
    np.testing.assert_allclose(m.w, before)

    @jit
    def read_only(x: jax.Array) -> jax.Array:
        return m(x)  # reading is fine

    assert read_only(jnp.ones(3)).shape == (2,)


def test_deleting_declared_fields() -> None:
    m = Linear(3, 2, rngs=nnx.Rngs(0))
    del m.w
    del m.din
    assert ("w",) not in nnx.state(m).paths
    with pytest.raises(AttributeError, match=r"Linear\.w is declared but was never assigned"):
        del m.w
