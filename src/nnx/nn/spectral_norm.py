"""``SpectralNorm``: divide a layer's weight matrices by their largest singular value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, cast

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype
from nnx.nn.path_dict import PathDict
from nnx.nn.reparametrize import Path, call_with, params_of, path_key
from nnx.nn.weight_norm import l2_normalize
from nnx.rngs import Rngs
from nnx.variables import BatchStat



if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import SpectralNormState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class SpectralNorm(Module):
    """Call ``layer_instance`` with each weight of 2 or more axes divided by its spectral norm.

    The largest singular value ``sigma`` is estimated by ``n_steps`` of power
    iteration from a vector ``u`` kept between calls (a weight of more than
    two axes is viewed as a matrix ``(-1, last axis)``). ``u`` and ``sigma``
    are ``BatchStat`` cells in ``batch_stats``, keyed as in Flax by the
    weight's path plus ``"u"``/``"sigma"``:
    ``norm.batch_stats[("layers", 0, "kernel", "u")]`` (a ``PathDict``; the
    state path is ``batch_stats/layers/0/kernel/u``). While ``update_stats`` (``model.train()``; off
    after ``model.eval()`` or ``update_stats=False``) each call stores the
    new estimate, so it sharpens over training. No gradient flows through
    ``u``.

    The wrapped layer's parameters stay the trained values; the normalised
    weight exists only during the call (Flax NNX instead writes it over the
    layer's parameter on each call).
    """

    batch_stats: PathDict[BatchStat[jax.Array]]

    def __init__(
        self,
        layer_instance: Module,
        *,
        n_steps: int = 1,
        epsilon: float = 1e-12,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        error_on_non_matrix: bool = False,
        update_stats: bool = True,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("SpectralNorm", rngs, ctx)
        self.layer_instance = layer_instance
        self.n_steps = n_steps
        self.epsilon = epsilon
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.error_on_non_matrix = error_on_non_matrix
        self.use_running_average = not update_stats  # what model.train() / model.eval() flip
        stats: dict[Path, BatchStat[jax.Array]] = {}
        for path, weight in self._matrices().items():
            key = rngs.params()
            stats[(*path, "u")] = BatchStat(initializers.normal()(key, (1, weight.shape[-1]), param_dtype))
            stats[(*path, "sigma")] = BatchStat(jnp.ones((), param_dtype))
        self.batch_stats = PathDict(stats)

    def _matrices(self) -> dict[Path, jax.Array]:
        """The weights to normalise, each viewed as a matrix; raises on a 3+-axis one if asked to."""
        chosen: dict[Path, jax.Array] = {}
        if self.n_steps < 1:
            return chosen
        for path, weight in params_of(self.layer_instance).items():
            if weight.ndim <= 1:
                continue
            if weight.ndim > 2 and self.error_on_non_matrix:
                raise ValueError(
                    f"SpectralNorm: parameter {path_key(path)!r} has {weight.ndim} axes {weight.shape} and "
                    "error_on_non_matrix=True; pass error_on_non_matrix=False to view it as a (-1, last axis) matrix."
                )
            chosen[path] = weight
        return chosen

    def _normalize(self, path: Path, weight: jax.Array, update_stats: bool) -> jax.Array:
        u_key, sigma_key = (*path, "u"), (*path, "sigma")
        if u_key not in self.batch_stats:
            raise RuntimeError(
                f"SpectralNorm: no power-iteration state for {path_key(path)!r} (have "
                f"{[path_key(k) for k in self.batch_stats]}); the wrapped layer's parameters changed after "
                "SpectralNorm was built. Build a new SpectralNorm around it."
            )
        matrix = weight.reshape(-1, weight.shape[-1])
        u = self.batch_stats[u_key].value
        v = u
        for _ in range(self.n_steps):
            v = l2_normalize(u @ matrix.T, (0, 1), self.epsilon)
            u = l2_normalize(v @ matrix, (0, 1), self.epsilon)
        u, v = lax.stop_gradient(u), lax.stop_gradient(v)
        sigma = (v @ matrix @ u.T)[0, 0]
        normalized = (matrix / jnp.where(sigma != 0, sigma, 1)).reshape(weight.shape)
        if update_stats:
            self.batch_stats[u_key].value = u
            self.batch_stats[sigma_key].value = sigma
        return normalized.astype(self.dtype or jnp.result_type(normalized, u, v, sigma))

    def __call__(self, x: jax.Array, update_stats: bool | None = None) -> Any:
        """``layer_instance(x)`` with spectrally normalised weights; ``update_stats`` overrides the mode."""
        update = not self.use_running_average if update_stats is None else update_stats
        replaced = {path: self._normalize(path, weight, update) for path, weight in self._matrices().items()}
        return call_with(self.layer_instance, replaced, lambda: cast(Callable[..., Any], self.layer_instance)(x))

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[SpectralNorm, SpectralNormState]
