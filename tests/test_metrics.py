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
    avg.update(loss=jnp.array(10.0), other=1)  # other keywords are ignored
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
    with pytest.raises(TypeError, match=r"Average\(argname='loss'\).update got keywords \['values'\]"):
        nnx.metrics.Average("loss").update(values=1.0)
    with pytest.raises(TypeError, match="needs logits=... and labels=..."):
        nnx.metrics.Accuracy().update(logits=jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"logits of shape \(2, 3\) do not fit labels of shape \(3,\)"):
        nnx.metrics.Accuracy().update(logits=jnp.ones((2, 3)), labels=jnp.ones((3,), jnp.int32))
    with pytest.raises(TypeError, match="is not an nnx metric"):
        nnx.MultiMetric(loss=3)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # under test


def test_multimetric_updates_inside_jit_through_split_merge() -> None:
    metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())
    graphdef, state = nnx.split(metrics)
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
