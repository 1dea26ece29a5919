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

import inspect
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import jax
import jax.numpy as jnp
from jax import lax

from typing_extensions import Self

from nnx.filters import Filter
from nnx.graph import split
from nnx.graphdef import GraphDef
from nnx.objects import Object
from nnx.state import State
from nnx.variables import Variable

if TYPE_CHECKING:
    from nnx.object_states import AverageState, AccuracyState, WelfordState, MultiMetricState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf



def _array(value: Any) -> jax.Array:
    """``value`` (an array, a Variable, a number, a list) as a JAX array."""
    array: jax.Array = jnp.asarray(value)
    return array


class MetricState(Variable[jax.Array], collection="metric_state"):
    """A running total of a metric."""

    __slots__ = ()


class Metric(Object):
    """Base of metrics: ``update(**batch_values)``, ``compute()``, ``reset()``.

    ``keywords()`` names what ``update`` reads; ``MultiMetric`` hands each
    metric only those, and a keyword no metric reads is an error rather than
    a silently ignored value (a misspelt ``mask=`` would otherwise give a
    plausible, wrong number).
    """

    def update(self, **values: Any) -> None:
        """Fold one batch into the running totals."""
        raise NotImplementedError

    def compute(self) -> Any:
        """The metric over everything seen since the last reset."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything seen (the cells are kept, their values zeroed)."""
        raise NotImplementedError

    def keywords(self) -> frozenset[str] | None:
        """The keywords ``update`` reads, or ``None`` when it takes any.

        Read from ``update``'s signature: its named parameters, or ``None`` if
        it takes ``**kwargs`` (a metric of your own with ``def update(self,
        preds, targets)`` is routed exactly those two).
        """
        parameters = inspect.signature(self.update).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return frozenset(p.name for p in parameters if p.kind in named)

    def _check_keywords(self, values: dict[str, Any], known: frozenset[str], required: tuple[str, ...]) -> None:
        """Raises naming any keyword of ``values`` outside ``known``, or a ``required`` one missing.

        ``known`` is what the calling class's own ``update`` reads (a subclass
        may read other keywords and call ``super().update`` with these).
        """
        unknown = sorted(set(values) - known)
        missing = [name for name in required if name not in values]
        if unknown or missing:
            problem = f"unknown keyword(s) {unknown}" if unknown else f"missing keyword(s) {missing}"
            raise TypeError(
                f"{self._describe()}.update: {problem}; it reads {', '.join(f'{k}=' for k in sorted(known))} "
                "(several metrics fed from one set of keywords: put them in nnx.MultiMetric, which routes each "
                "metric its own)."
            )

    def _describe(self) -> str:
        return type(self).__name__

    @overload
    def split(self, /) -> tuple[GraphDef[Self], State[Self]]: ...
    @overload
    def split(self, f1: Filter, /) -> tuple[GraphDef[Self], State[Self]]: ...
    @overload
    def split(self, f1: Filter, f2: Filter, /) -> tuple[GraphDef[Self], State[Self], State[Self]]: ...
    @overload
    def split(self, /, *filters: Filter) -> tuple[Any, ...]: ...
    def split(self, /, *filters: Filter) -> tuple[Any, ...]:
        """``nnx.split(metric, *filters)``: Flax's spelling, for moving a metric through ``jax.jit``."""
        return split(self, *filters)


def _masked(values: jax.Array, mask: Any, who: str) -> tuple[jax.Array, jax.Array]:
    """``values`` and a 0/1 float mask broadcast to their shape (all ones without a mask)."""
    if mask is None:
        return values, jnp.ones(values.shape, jnp.float32)
    mask = _array(mask)
    try:
        weights = jnp.broadcast_to(mask, values.shape).astype(jnp.float32)
    except ValueError:
        raise ValueError(
            f"{who}: mask of shape {mask.shape} does not broadcast to the values' shape {values.shape}; "
            "pass a mask with one entry per value (or broadcastable to them)."
        ) from None
    return values, weights


class Average(Metric):
    """The mean of the values passed as keyword ``argname`` (all elements of every batch).

    ``update(values=v, mask=m)`` counts only the elements where ``m`` is true
    (``m`` broadcasts to ``v``'s shape).
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[Average, AverageState]

    def __init__(self, argname: str = "values") -> None:
        self.argname = argname
        self.total = MetricState(lax.full((), 0, jnp.float32))
        self.count = MetricState(lax.full((), 0, jnp.int32))

    def keywords(self) -> frozenset[str] | None:
        if type(self).update is not Average.update:  # a subclass reading its own keywords
            return super().keywords()
        return frozenset((self.argname, "mask"))

    def update(self, **values: Any) -> None:
        self._check_keywords(values, frozenset((self.argname, "mask")), (self.argname,))
        self._add(values[self.argname], values.get("mask"))

    def _add(self, batch: Any, mask: Any = None) -> None:
        if mask is not None and isinstance(batch, (int, float)):
            raise ValueError(
                f"{self._describe()}.update: with mask=, {self.argname}= should be a jax array with one value "
                f"per mask entry, not the number {batch!r}."
            )
        values, weights = _masked(_array(batch), mask, f"{self._describe()}.update")
        self.total.value = self.total.value + jnp.sum(values * weights, dtype=jnp.float32)
        self.count.value = self.count.value + jnp.sum(weights).astype(jnp.int32)

    def compute(self) -> jax.Array:
        """``total / count`` (NaN before the first update)."""
        return self.total.value / self.count.value

    def reset(self) -> None:
        self.total.value = lax.full_like(self.total.value, 0)
        self.count.value = lax.full_like(self.count.value, 0)

    def _describe(self) -> str:
        return f"{type(self).__name__}(argname={self.argname!r})"


class Accuracy(Average):
    """The fraction of correct predictions: ``update(logits=..., labels=..., mask=None)``.

    Multi-class (``threshold=None``, the default): ``logits`` are shaped
    ``labels.shape + (classes,)`` and the prediction is their arg-max. Binary
    (``threshold=t``): ``logits`` have ``labels``' shape, a prediction is
    positive where ``logits >= t``, a label where it is non-zero. ``mask``
    (``labels``' shape) leaves out the entries where it is false.
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[Accuracy, AccuracyState]  # type: ignore[assignment]  # pyright: ignore[reportIncompatibleVariableOverride]  # its own, not its base's

    def __init__(self, threshold: float | None = None) -> None:
        super().__init__("accuracy")
        if threshold is not None and not isinstance(threshold, (int, float)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"Accuracy(threshold={threshold!r}): threshold must be a number or None.")
        self.threshold = threshold

    def keywords(self) -> frozenset[str] | None:
        if type(self).update is not Accuracy.update:
            return Metric.keywords(self)
        return frozenset(("logits", "labels", "mask"))

    def update(self, **values: Any) -> None:
        self._check_keywords(values, frozenset(("logits", "labels", "mask")), ("logits", "labels"))
        logits, labels = _array(values["logits"]), _array(values["labels"])
        if self.threshold is None:
            if logits.ndim != labels.ndim + 1 or logits.shape[:-1] != labels.shape:
                raise ValueError(
                    f"Accuracy.update: For multi-class classification (threshold=None), logits must be shaped "
                    f"labels.shape + (classes,); got logits {logits.shape} and labels {labels.shape}. "
                    "For binary labels build Accuracy(threshold=...)."
                )
            correct = jnp.argmax(logits, axis=-1) == labels
        else:
            if logits.shape != labels.shape:
                raise ValueError(
                    f"Accuracy.update: For binary classification (threshold={self.threshold}), logits must have "
                    f"labels' shape; got logits {logits.shape} and labels {labels.shape}."
                )
            correct = (logits >= self.threshold) == (labels != 0)
        self._add(correct, values.get("mask"))

    def _describe(self) -> str:
        return "Accuracy"


class Statistics(NamedTuple):
    """What ``Welford.compute`` returns."""

    mean: jax.Array
    standard_error_of_mean: jax.Array
    standard_deviation: jax.Array


class Welford(Metric):
    """Running mean and spread of the values passed as keyword ``argname``.

    Batches are merged with Chan et al.'s pairwise update of (count, mean,
    sum of squared deviations), so the result is as exact as one pass over
    everything, and stays so when the values sit far from zero.
    ``update(values=v, mask=m)`` counts only the elements where ``m`` is true.
    ``compute()`` gives a ``Statistics`` of mean, standard error of the mean
    and (population) standard deviation.
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[Welford, WelfordState]

    def __init__(self, argname: str = "values") -> None:
        self.argname = argname
        self.count = MetricState(lax.full((), 0, jnp.int32))
        self.mean = MetricState(lax.full((), 0, jnp.float32))
        self.m2 = MetricState(lax.full((), 0, jnp.float32))

    def keywords(self) -> frozenset[str] | None:
        if type(self).update is not Welford.update:
            return super().keywords()
        return frozenset((self.argname, "mask"))

    def update(self, **values: Any) -> None:
        self._check_keywords(values, frozenset((self.argname, "mask")), (self.argname,))
        batch, weights = _masked(_array(values[self.argname]).astype(jnp.float32), values.get("mask"), self._describe())
        n_batch = jnp.sum(weights)
        mean_batch = jnp.sum(batch * weights) / jnp.maximum(n_batch, 1.0)
        m2_batch = jnp.sum(weights * (batch - mean_batch) ** 2)
        n_seen = self.count.value.astype(jnp.float32)
        n_total = n_seen + n_batch
        delta = mean_batch - self.mean.value
        share = n_batch / jnp.maximum(n_total, 1.0)
        self.mean.value = self.mean.value + delta * share
        self.m2.value = self.m2.value + m2_batch + delta * delta * n_seen * share
        self.count.value = self.count.value + n_batch.astype(jnp.int32)

    def compute(self) -> Statistics:
        """Mean, standard error and standard deviation (NaN spreads before the first update)."""
        count = self.count.value.astype(jnp.float32)
        deviation = jnp.sqrt(self.m2.value / count)
        return Statistics(self.mean.value, deviation / jnp.sqrt(count), deviation)

    def reset(self) -> None:
        for cell in (self.count, self.mean, self.m2):
            cell.value = lax.full_like(cell.value, 0)

    def _describe(self) -> str:
        return f"Welford(argname={self.argname!r})"


class MultiMetric(Metric):
    """Several named metrics updated together.

    ``update(**values)`` hands each metric the keywords it reads (see
    ``Metric.keywords``); a keyword no metric reads is an error naming it.
    ``mask=`` is either one mask for every metric or a dict of masks by
    metric name (``mask={"accuracy": m}``: the others are unmasked).
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[MultiMetric, MultiMetricState]

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

    def keywords(self) -> frozenset[str] | None:
        union: set[str] = {"mask"}
        for metric in self.metrics().values():
            accepted = metric.keywords()
            if accepted is None:
                return None
            union |= accepted
        return frozenset(union)

    def update(self, **values: Any) -> None:
        mask = values.pop("mask", None)
        metrics = self.metrics()
        masks = self._masks_by_metric(mask, metrics)
        routed = {name: metric.keywords() for name, metric in metrics.items()}
        if all(accepted is not None for accepted in routed.values()):
            read: set[str] = set()
            for accepted in routed.values():
                read |= accepted or frozenset()
            if unknown := sorted(set(values) - read):
                readers = {name: sorted(a - {"mask"}) for name, a in routed.items() if a is not None}
                raise TypeError(f"MultiMetric.update: no metric reads {unknown}; the metrics read {readers}.")
        for name, metric in metrics.items():
            accepted = routed[name]
            own = dict(values) if accepted is None else {k: v for k, v in values.items() if k in accepted}
            if masks.get(name) is not None:
                if accepted is not None and "mask" not in accepted:
                    raise TypeError(
                        f"MultiMetric.update: metric {name!r} ({type(metric).__name__}) takes no mask=, so a mask "
                        "for it would be ignored; give masks by name (mask={...}) to the metrics that take one."
                    )
                own["mask"] = masks[name]
            metric.update(**own)

    def _masks_by_metric(self, mask: Any, metrics: dict[str, Metric]) -> dict[str, Any]:
        if not isinstance(mask, dict):
            return dict.fromkeys(metrics, mask)
        by_name: dict[str, Any] = mask  # pyright: ignore[reportUnknownVariableType]
        if unknown := sorted(set(by_name) - set(metrics)):
            raise TypeError(f"MultiMetric.update: mask names {unknown}, which are not metrics here: {sorted(metrics)}.")
        return by_name

    def compute(self) -> dict[str, Any]:
        return {name: metric.compute() for name, metric in self.metrics().items()}

    def reset(self) -> None:
        for metric in self.metrics().values():
            metric.reset()
