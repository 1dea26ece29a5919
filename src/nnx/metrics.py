"""``nnx.metrics``: running metrics whose totals live in ``MetricState`` cells.

Because the totals are cells, a metric is updated in place inside a jitted
train step (passed through ``nnx.jit``, or split/merged around ``jax.jit``)
like any other state::

    metrics = nnx.MultiMetric(loss=nnx.metrics.Average("loss"), accuracy=nnx.metrics.Accuracy())
    metrics.update(loss=loss, logits=logits, labels=labels)   # each metric takes what it needs
    metrics.compute()   # {"loss": ..., "accuracy": ...}
    metrics.reset()
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from nnx.objects import Object
from nnx.variables import Variable


def _array(value: Any) -> jax.Array:
    """``value`` (an array, a Variable, a number, a list) as a JAX array."""
    array: jax.Array = jnp.asarray(value)
    return array


class MetricState(Variable[jax.Array], collection="metric_state"):
    """A running total of a metric."""

    __slots__ = ()


class Metric(Object):
    """Base of metrics: ``update(**batch_values)``, ``compute()``, ``reset()``."""

    def update(self, **values: Any) -> None:
        """Fold one batch into the running totals."""
        raise NotImplementedError

    def compute(self) -> Any:
        """The metric over everything seen since the last reset."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything seen (the cells are kept, their values zeroed)."""
        raise NotImplementedError


class Average(Metric):
    """The mean of the values passed as keyword ``argname`` (all elements of every batch)."""

    def __init__(self, argname: str = "values") -> None:
        self.argname = argname
        self.total = MetricState(lax.full((), 0, jnp.float32))
        self.count = MetricState(lax.full((), 0, jnp.int32))

    def update(self, **values: Any) -> None:
        if self.argname not in values:
            raise TypeError(
                f"{type(self).__name__}(argname={self.argname!r}).update got keywords {sorted(values)}; "
                f"pass {self.argname}=... (or build it with argname= one of those)."
            )
        self._add(_array(values[self.argname]))

    def _add(self, batch: jax.Array) -> None:
        self.total.value = self.total.value + jnp.sum(batch, dtype=jnp.float32)
        self.count.value = self.count.value + batch.size

    def compute(self) -> jax.Array:
        """``total / count`` (NaN before the first update)."""
        return self.total.value / self.count.value

    def reset(self) -> None:
        self.total.value = lax.full_like(self.total.value, 0)
        self.count.value = lax.full_like(self.count.value, 0)


class Accuracy(Average):
    """The fraction of correct predictions.

    ``update(logits=..., labels=...)``: with ``logits`` of shape
    ``labels.shape + (classes,)`` the prediction is the arg-max; with
    ``logits`` of the same shape as boolean/0-1 ``labels`` (binary), the
    prediction is ``logits > threshold``.
    """

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__("accuracy")
        self.threshold = threshold

    def update(self, **values: Any) -> None:
        if "logits" not in values or "labels" not in values:
            raise TypeError(f"Accuracy.update needs logits=... and labels=...; got keywords {sorted(values)}.")
        logits, labels = _array(values["logits"]), _array(values["labels"])
        if logits.ndim == labels.ndim + 1 and logits.shape[:-1] == labels.shape:
            predictions = jnp.argmax(logits, axis=-1)
        elif logits.shape == labels.shape:
            predictions = logits > self.threshold
            labels = labels.astype(jnp.bool_)
        else:
            raise ValueError(
                f"Accuracy.update: logits of shape {logits.shape} do not fit labels of shape {labels.shape}; "
                "expected logits shaped labels.shape + (classes,), or labels.shape for binary labels."
            )
        self._add(predictions == labels)


class MultiMetric(Metric):
    """Several named metrics updated together: ``update`` passes every keyword to each."""

    def __init__(self, **metrics: Metric) -> None:
        if not metrics:
            raise TypeError("MultiMetric needs at least one metric: MultiMetric(loss=nnx.metrics.Average('loss')).")
        for name, metric in metrics.items():
            if not isinstance(metric, Metric):  # pyright: ignore[reportUnnecessaryIsInstance]  # untyped callers
                raise TypeError(f"MultiMetric: {name}={metric!r} is not an nnx metric.")
            setattr(self, name, metric)
        self._names = tuple(metrics)

    def metrics(self) -> dict[str, Metric]:
        """The metrics by name."""
        return {name: getattr(self, name) for name in self._names}

    def update(self, **values: Any) -> None:
        for metric in self.metrics().values():
            metric.update(**values)

    def compute(self) -> dict[str, Any]:
        return {name: metric.compute() for name, metric in self.metrics().items()}

    def reset(self) -> None:
        for metric in self.metrics().values():
            metric.reset()
