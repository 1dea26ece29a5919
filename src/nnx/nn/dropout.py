"""``Dropout``: zero a random fraction ``rate`` of the inputs while training."""

from __future__ import annotations

from typing import Sequence, TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from nnx.seed_compat import Context, Module, call_flag, call_rngs, draw_key, forked_stream, layer_rngs
from nnx.rngs import Rngs, RngStream

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import DropoutState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


class Dropout(Module):
    """Randomly zero inputs with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    The layer holds its own ``RngStream`` in ``rngs`` (as Flax does: forked from
    the ``rng_collection`` stream of what it was built with: ``rngs=`` an
    ``Rngs`` or a stream, ``ctx=``, or an enclosing ``Module.init(key)``), so its
    keys are state: they advance on every call and travel through
    ``split``/``merge`` and the transforms, and using them never advances the
    caller's streams. ``rngs=`` at call time (an ``Rngs``, a stream or a key) or
    ``ctx=nnx.context(dropout=key)`` is used instead.
    ``deterministic=True`` (what ``model.eval()`` sets; also a ``deterministic``
    flag in ``ctx``) returns the input unchanged. ``broadcast_dims`` shares one
    mask along those axes.
    """

    def __init__(
        self,
        rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        deterministic: bool = False,
        rng_collection: str = "dropout",
        rngs: Rngs | RngStream | None = None,
        ctx: Context | None = None,
    ) -> None:
        given = rngs if isinstance(rngs, RngStream) else layer_rngs("Dropout", rngs, ctx, required=False)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"Dropout(rate={rate!r}): the rate is a probability; pass a value in [0, 1].")
        self.rate = rate
        self.broadcast_dims = tuple(broadcast_dims)
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.rngs: RngStream | None = forked_stream(given, rng_collection)

    def __call__(
        self,
        x: jax.Array,
        *,
        deterministic: bool | None = None,
        rngs: Rngs | RngStream | jax.Array | None = None,
        ctx: Context | None = None,
    ) -> jax.Array:
        """Apply dropout to ``x``; ``deterministic`` and ``rngs``/``ctx`` override the layer's own."""
        deterministic = call_flag("deterministic", deterministic, ctx, self.deterministic)
        if deterministic or self.rate == 0.0:
            return x
        if self.rate == 1.0:
            return lax.full_like(x, 0)
        source = call_rngs(rngs, ctx, self.rngs)
        if source is None:
            raise ValueError(
                "`deterministic` is False, but no `rngs` argument was provided to Dropout, and it keeps no "
                "stream of its own: build it with "
                "Dropout(rate, rngs=nnx.Rngs(0)) or ctx=nnx.context(0) or inside Module.init(key)(...), "
                "pass rngs= / ctx=nnx.context(dropout=key) when calling it, or call "
                "model.eval() / pass deterministic=True."
            )
        key = draw_key(source, self.rng_collection, "Dropout")
        keep_prob = 1.0 - self.rate
        shared = {d % x.ndim for d in self.broadcast_dims}
        mask_shape = tuple(1 if a in shared else n for a, n in enumerate(x.shape))
        keep = jax.random.bernoulli(key, keep_prob, mask_shape)
        keep = jnp.broadcast_to(keep, x.shape)
        return lax.select(keep, x / keep_prob, lax.full_like(x, 0))

    def set_view(self, deterministic: bool | None = None) -> None:
        """What ``nnx.view`` sets on this layer.

        Args:
          deterministic: if True, the copy returns its input unchanged (evaluation).
        """
        if deterministic is not None:
            self.deterministic = deterministic

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Dropout, DropoutState]
