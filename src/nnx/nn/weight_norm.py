"""``WeightNorm``: reparametrise a layer's weights as a direction times a learned length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, cast

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.filters import Filter, FilterBase, PathContains, to_filter
from nnx.graph import state
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, canonical_axes
from nnx.nn.metadata import Initializer
from nnx.nn.path_dict import PathDict
from nnx.nn.reparametrize import Path, call_with, path_key
from nnx.rngs import Rngs
from nnx.variables import Param


def l2_normalize(x: jax.Array, axes: tuple[int, ...], epsilon: float) -> jax.Array:
    """``x / sqrt(sum(x**2 over axes) + epsilon)``."""
    return x * lax.rsqrt(jnp.sum(x * x, axis=axes, keepdims=True) + epsilon)



if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import WeightNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class WeightNorm(Module):
    """Call ``layer_instance`` with each chosen weight ``v`` replaced by ``scale * v / |v|``.

    ``|v|`` is the L2 norm over every axis except ``feature_axes`` (default
    the last: a ``Linear`` kernel's columns each get unit length), and
    ``scale`` is a learned ``Param`` per feature, one per chosen weight, in
    ``scales`` keyed as in Flax by the weight's path (``norm.scales[("kernel",)]``,
    a ``PathDict``). ``variable_filter``
    chooses the weights (default: paths containing ``"kernel"``);
    ``feature_axes=None`` normalises each weight as a whole (a scalar scale).

    The wrapped layer's parameters stay the trained direction ``v``; the
    normalised weight exists only during the call (Flax NNX instead writes
    it over the layer's parameter on each call).
    """

    scales: PathDict[Param[jax.Array]]

    def __init__(
        self,
        layer_instance: Module,
        *,
        feature_axes: int | tuple[int, ...] | None = -1,
        use_scale: bool = True,
        scale_init: Initializer = initializers.ones,
        epsilon: float = 1e-12,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        variable_filter: Filter = PathContains("kernel"),
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("WeightNorm", rngs, ctx, required=False)
        self.layer_instance = layer_instance
        self.feature_axes = feature_axes
        self.use_scale = use_scale
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        # stored as one FilterBase: the Filter alias is recursive, which the mypy plugin cannot walk
        self.variable_filter: FilterBase = to_filter(variable_filter)
        chosen = self._chosen()
        if not chosen:
            raise ValueError(
                f"WeightNorm: variable_filter={variable_filter!r} matches no Param of "
                f"{type(layer_instance).__name__}; its parameters are "
                f"{[path_key(p) for p in state(layer_instance, Param).paths]}."
            )
        scales: dict[Path, Param[jax.Array]] = {}
        if use_scale:
            key = rngs.params() if rngs is not None else jax.random.key(0)  # the default initializer ignores it
            for path, weight in chosen.items():
                shape = tuple(weight.shape[a] for a in self._axes(weight)[0])
                scales[path] = Param(scale_init(key, shape, param_dtype))
        self.scales = PathDict(scales)

    def _chosen(self) -> dict[Path, jax.Array]:
        chosen = state(self.layer_instance, Param).filter(self.variable_filter)
        return dict(zip(chosen.paths, chosen.leaves))

    def _axes(self, weight: jax.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(feature axes, reduction axes) of ``weight``."""
        features = () if self.feature_axes is None else canonical_axes(self.feature_axes, weight.ndim)
        return features, tuple(a for a in range(weight.ndim) if a not in features)

    def normalized(self, path: Path, weight: jax.Array) -> jax.Array:
        """The weight the layer sees in place of ``weight`` (at ``path``)."""
        features, reduction = self._axes(weight)
        direction = l2_normalize(weight, reduction, self.epsilon)
        if not self.use_scale:
            return direction.astype(self.dtype or weight.dtype)
        if path not in self.scales:
            raise RuntimeError(
                f"WeightNorm: no scale for {path_key(path)!r} (scales: {[path_key(k) for k in self.scales]}); "
                "the wrapped layer's parameters changed after WeightNorm was built. Build a new WeightNorm around it."
            )
        scale = self.scales[path].value
        shape = [weight.shape[a] if a in features else 1 for a in range(weight.ndim)]
        out = direction * scale.reshape(shape)
        return out.astype(self.dtype or jnp.result_type(weight, scale))

    def __call__(self, x: jax.Array, *args: Any, **kwargs: Any) -> Any:
        """``layer_instance(x, *args, **kwargs)`` with the normalised weights."""
        replaced = {path: self.normalized(path, weight) for path, weight in self._chosen().items()}
        return call_with(self.layer_instance, replaced, lambda: cast(Callable[..., Any], self.layer_instance)(x, *args, **kwargs))

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[WeightNorm, WeightNormState]
