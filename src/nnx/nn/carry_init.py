"""The first carry of the recurrent cells built from ``Linear`` layers (``SimpleCell``, ``OptimizedLSTMCell``)."""

from __future__ import annotations

import jax

from nnx.nn import initializers
from nnx.nn.dtypes import Dtype
from nnx.nn.metadata import Initializer
from nnx.rngs import Rngs, RngStream


def initial_state(
    input_shape: tuple[int, ...],
    hidden_features: int,
    dtype: Dtype,
    carry_init: Initializer | None,
    rngs: Rngs | RngStream | None,
    who: str,
) -> jax.Array:
    """One ``(*batch, hidden_features)`` state, zeros unless ``carry_init`` says otherwise.

    ``carry_init`` draws from ``rngs``' ``carry`` stream (a stream passed
    directly is used as is); zeros need no key.
    """
    shape = (*input_shape[:-1], hidden_features)
    if carry_init is None:
        return initializers.zeros(jax.random.key(0), shape, dtype)
    if rngs is None:
        raise ValueError(
            f"{who}.initialize_carry(carry_init=...) needs rngs= to draw the carry from "
            "(nnx.Rngs(carry=0), or an RngStream)."
        )
    stream = rngs.carry if isinstance(rngs, Rngs) else rngs
    return carry_init(stream(), shape, dtype)
