"""nnx.metrics: Average, Accuracy, MultiMetric; eager and inside jax.jit via split/merge."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx
from typed_jax import jit


def test_average_over_batches_of_different_sizes() -> None:
    avg = nnx.metrics.Average("loss")
    avg.update(loss=jnp.array([1.0, 2.0, 3.0]))
    avg.update(loss=jnp.array(10.0))
    assert float(avg.compute()) == pytest.approx(4.0)
    avg.reset()
    assert np.isnan(float(avg.compute()))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=5), min_size=1, max_size=5))
def test_average_equals_the_mean_of_everything_seen(batches: list[list[float]]) -> None:
    avg = nnx.metrics.Average()
    for batch in batches:
        avg.update(values=jnp.array(batch, jnp.float32))
    flat = [v for batch in batches for v in batch]
    assert float(avg.compute()) == pytest.approx(float(np.mean(np.array(flat, np.float32))), rel=1e-4, abs=1e-3)


def test_accuracy_multiclass_and_binary() -> None:
    acc = nnx.metrics.Accuracy()
    logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    acc.update(logits=logits, labels=jnp.array([1, 0, 0, 0]))
    assert float(acc.compute()) == pytest.approx(0.75)
    binary = nnx.metrics.Accuracy(threshold=0.0)
    binary.update(logits=jnp.array([2.0, -1.0, 0.5]), labels=jnp.array([1, 0, 0]))
    assert float(binary.compute()) == pytest.approx(2 / 3)


def test_metric_errors_name_what_is_missing() -> None:
    with pytest.raises(TypeError, match=r"Average\(argname='loss'\).update: unknown keyword\(s\) \['values'\]"):
        nnx.metrics.Average("loss").update(values=1.0)
    with pytest.raises(TypeError, match=r"missing keyword\(s\) \['labels'\]"):
        nnx.metrics.Accuracy().update(logits=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"multi-class .* got logits \(2, 3\) and labels \(3,\)"):
        nnx.metrics.Accuracy().update(logits=jnp.ones((2, 3)), labels=jnp.ones((3,), jnp.int32))
    with pytest.raises(ValueError, match=r"binary .* got logits \(3,\) and labels \(2, 3\)"):
        nnx.metrics.Accuracy(threshold=0.5).update(logits=jnp.ones((3,)), labels=jnp.ones((2, 3), jnp.int32))
    with pytest.raises(TypeError, match="is not an nnx metric"):
        nnx.MultiMetric(loss=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # under test


def test_multimetric_updates_inside_jit_through_split_merge() -> None:
    metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())
    graphdef, whole = nnx.split(metrics)
    state: nnx.State[nnx.MultiMetric] = whole  # the steps below return the generic State
    assert {p[-1] for p in state.paths} == {"total", "count"}

    @jit
    def step(state: nnx.State[nnx.MultiMetric], logits: jax.Array, labels: jax.Array) -> nnx.State[nnx.MultiMetric]:
        m = nnx.merge(graphdef, state)
        m.update(loss=jnp.mean(logits), logits=logits, labels=labels)
        return nnx.state(m)

    logits = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    state = step(state, logits, jnp.array([1, 1]))
    state = step(state, logits, jnp.array([1, 0]))
    nnx.update(metrics, state)
    result = metrics.compute()
    assert float(result["accuracy"]) == pytest.approx(0.75)
    assert float(result["loss"]) == pytest.approx(0.5)
    metrics.reset()
    assert all(np.isnan(float(v)) for v in metrics.compute().values())


def test_metrics_update_inside_nnx_jit() -> None:
    metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())

    @nnx.jit
    def step(metrics: nnx.MultiMetric, logits: jax.Array, labels: jax.Array) -> None:
        metrics.update(loss=jnp.mean(logits), logits=logits, labels=labels)

    logits = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    step(metrics, logits, jnp.array([1, 1]))
    step(metrics, logits, jnp.array([1, 0]))
    assert float(metrics.compute()["accuracy"]) == pytest.approx(0.75)


# -- masks, unknown keywords, Welford (issue 12) ---------------------------------

LOGITS = jnp.array([[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, -1.0]])
LABELS = jnp.array([1, 1, 0, 1, 0])


def test_accuracy_counts_only_masked_in_entries() -> None:
    # predictions [1, 1, 1, 0, 0]: right on entries 0, 1, 4; the mask keeps entries 0, 1, 3
    acc = nnx.metrics.Accuracy()
    acc.update(logits=LOGITS, labels=LABELS, mask=LABELS > 0)
    assert float(acc.compute()) == pytest.approx(2 / 3)
    assert int(acc.count.value) == 3


def test_masked_metrics_agree_with_flax() -> None:
    fnnx = pytest.importorskip("flax.nnx")
    mask = jnp.array([True, False, True, True, False])
    ours, theirs = nnx.metrics.Accuracy(), fnnx.metrics.Accuracy()
    ours.update(logits=LOGITS, labels=LABELS, mask=mask)
    theirs.update(logits=LOGITS, labels=LABELS, mask=mask)
    assert float(ours.compute()) == pytest.approx(float(theirs.compute()))
    values = jnp.arange(12.0).reshape(3, 4)
    avg_ours, avg_theirs = nnx.metrics.Average(), fnnx.metrics.Average()
    avg_ours.update(values=values, mask=values > 4)
    avg_theirs.update(values=values, mask=values > 4)
    assert float(avg_ours.compute()) == pytest.approx(float(avg_theirs.compute()))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100, width=32), st.booleans()), min_size=1, max_size=12))
def test_masked_average_is_the_mean_of_the_kept_values(pairs: list[tuple[float, bool]]) -> None:
    values = np.array([v for v, _ in pairs], np.float32)
    keep = np.array([k for _, k in pairs])
    avg = nnx.metrics.Average()
    avg.update(values=jnp.asarray(values), mask=jnp.asarray(keep))
    assert int(avg.count.value) == int(keep.sum())
    if keep.any():
        assert float(avg.compute()) == pytest.approx(float(values[keep].mean()), rel=1e-4, abs=1e-3)
    else:
        assert np.isnan(float(avg.compute()))


def test_mask_must_broadcast_and_values_must_be_arrays() -> None:
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not broadcast to the values' shape \(2, 2\)"):
        nnx.metrics.Average().update(values=jnp.ones((2, 2)), mask=jnp.ones(3))
    with pytest.raises(ValueError, match="should be a jax array"):
        nnx.metrics.Average().update(values=2, mask=jnp.ones(1))


def test_unknown_keywords_are_errors_naming_them() -> None:
    avg = nnx.metrics.Average("loss")
    with pytest.raises(TypeError, match=r"unknown keyword\(s\) \['maks'\]"):
        avg.update(loss=jnp.ones(3), maks=jnp.ones(3))
    assert int(avg.count.value) == 0  # nothing was counted
    metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average("loss"))
    with pytest.raises(TypeError, match=r"no metric reads \['lables'\]"):
        metrics.update(logits=LOGITS, lables=LABELS, labels=LABELS, loss=jnp.ones(2))
    with pytest.raises(TypeError, match=r"mask names \['acc'\], which are not metrics here"):
        metrics.update(logits=LOGITS, labels=LABELS, loss=jnp.ones(2), mask={"acc": LABELS > 0})


def test_multimetric_routes_masks_by_name_like_flax() -> None:
    # the numbers of Flax's own test: masked accuracy 2/3 then 4/7, loss masked only in the second batch
    metrics = nnx.MultiMetric(accuracy=nnx.metrics.Accuracy(), loss=nnx.metrics.Average())
    metrics.update(logits=LOGITS, labels=LABELS, values=jnp.array([1, 2, 3, 4]), mask={"accuracy": LABELS > 0})
    first = metrics.compute()
    assert float(first["accuracy"]) == pytest.approx(2 / 3)
    assert float(first["loss"]) == pytest.approx(2.5)
    labels2, loss2 = jnp.array([0, 1, 1, 1, 1]), jnp.array([3, 2, 1, 0])
    metrics.update(logits=LOGITS, labels=labels2, values=loss2, mask={"accuracy": labels2 > 0, "loss": loss2 > 1})
    second = metrics.compute()
    assert float(second["accuracy"]) == pytest.approx(4 / 7)
    assert float(second["loss"]) == pytest.approx(15 / 6)


def test_multimetric_routes_a_custom_metric_by_its_signature() -> None:
    class Hits(nnx.metrics.Average):
        def update(self, preds: jax.Array, targets: jax.Array) -> None:  # type: ignore[override]  # pyright: ignore[reportIncompatibleMethodOverride]  # a user's own signature
            super().update(values=preds == targets)

    metrics = nnx.MultiMetric(hits=Hits(), loss=nnx.metrics.Average("loss"))
    metrics.update(preds=jnp.array([1, 2, 3]), targets=jnp.array([1, 0, 3]), loss=jnp.array(1.0), mask={"loss": None})
    assert float(metrics.compute()["hits"]) == pytest.approx(2 / 3)
    with pytest.raises(TypeError, match=r"metric 'hits' \(Hits\) takes no mask="):
        metrics.update(preds=jnp.array([1]), targets=jnp.array([1]), loss=jnp.array(1.0), mask=jnp.array([True]))


def test_welford_statistics_match_flax_and_numpy() -> None:
    fnnx = pytest.importorskip("flax.nnx")
    batches = [jax.random.normal(jax.random.key(i), (5, 2)) * 3 + 1 for i in range(3)]
    ours, theirs = nnx.metrics.Welford(), fnnx.metrics.Welford()
    for batch in batches:
        ours.update(values=batch)
        theirs.update(values=batch)
    everything = np.concatenate([np.asarray(b).ravel() for b in batches])
    got, want = ours.compute(), theirs.compute()
    for a, b in ((got.mean, want.mean), (got.standard_deviation, want.standard_deviation),
                 (got.standard_error_of_mean, want.standard_error_of_mean)):  # fmt: skip
        assert float(a) == pytest.approx(float(b), rel=1e-5)
    assert float(got.mean) == pytest.approx(float(everything.mean()), rel=1e-5)
    assert float(got.standard_deviation) == pytest.approx(float(everything.std()), rel=1e-5)
    ours.reset()
    assert int(ours.count.value) == 0 and np.isnan(float(ours.compute().standard_deviation))


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.floats(-50, 50, width=32), st.booleans()), min_size=1, max_size=6),
             min_size=1, max_size=4),
    st.floats(-1e4, 1e4),
)  # fmt: skip
def test_welford_over_masked_batches_equals_one_pass(batches: list[list[tuple[float, bool]]], offset: float) -> None:
    welford = nnx.metrics.Welford()
    for batch in batches:
        values = np.array([v for v, _ in batch], np.float32) + np.float32(offset)
        welford.update(values=jnp.asarray(values), mask=jnp.asarray([k for _, k in batch]))
    kept = np.array([v + np.float32(offset) for b in batches for v, k in b if k], np.float64)
    stats = welford.compute()
    assert int(welford.count.value) == kept.size
    if kept.size:
        assert float(stats.mean) == pytest.approx(kept.mean(), rel=1e-4, abs=1e-2)
        assert float(stats.standard_deviation) == pytest.approx(kept.std(), rel=1e-3, abs=2e-2)


def test_welford_updates_inside_nnx_jit() -> None:
    welford = nnx.metrics.Welford("loss")

    @nnx.jit
    def step(metric: nnx.metrics.Welford, loss: jax.Array) -> None:
        metric.update(loss=loss)

    step(welford, jnp.array([1.0, 2.0, 3.0, 4.0]))
    step(welford, jnp.array([3.0, 2.0, 1.0, 0.0]))
    assert float(welford.compute().mean) == pytest.approx(2.0)
    assert float(welford.compute().standard_deviation) == pytest.approx(np.std([1, 2, 3, 4, 3, 2, 1, 0]), rel=1e-5)


def test_metric_split_is_nnx_split_and_merges_back() -> None:
    # Flax's Metric.split: a metric carried through jax.jit as (graphdef, state).
    welford = nnx.metrics.Welford()
    welford.update(values=jnp.arange(6.0))
    graphdef, state = welford.split()
    assert set(state.paths) == set(nnx.split(welford)[1].paths)

    @jit
    def add(state: nnx.State[nnx.metrics.Welford], values: jax.Array) -> nnx.State[nnx.metrics.Welford]:
        metric = nnx.merge(graphdef, state)
        metric.update(values=values)
        return nnx.state(metric)

    merged = nnx.merge(graphdef, add(state, jnp.arange(6.0, 10.0)))
    assert float(merged.compute().mean) == pytest.approx(4.5)
    assert float(merged.compute().standard_deviation) == pytest.approx(float(np.std(np.arange(10.0))), rel=1e-5)
    accuracy = nnx.metrics.Accuracy()
    _, counts, rest = accuracy.split(nnx.metrics.MetricState, ...)
    assert set(counts.paths) == {("total",), ("count",)} and not rest.paths
