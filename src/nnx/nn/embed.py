"""``Embed``: a lookup table from integer ids to vectors, with ``attend`` for tied outputs."""

from __future__ import annotations

from typing import Any, Mapping, TYPE_CHECKING

import jax
import jax.numpy as jnp

from nnx.seed_compat import Context, Module, layer_rngs
from nnx.nn import initializers
from nnx.nn.dtypes import Dtype, PromoteDtypeFn, promote_dtype
from nnx.nn.metadata import NO_METADATA, Initializer, record_metadata
from nnx.rngs import Rngs
from nnx.variables import Param

if TYPE_CHECKING:  # a stub-only module (there is no run-time nnx.layer_states)
    from nnx.layer_states import EmbedState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

default_embed_init: Initializer = initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


class Embed(Module):
    """``embedding`` has shape ``(num_embeddings, features)``; ``embed(ids)`` looks rows up.

    ``embed.attend(h)`` is ``h @ embedding.T``: logits over the vocabulary that
    reuse the input embedding (weight tying). ``embedding`` is a ``Param`` cell.
    ``promote_dtype`` casts ``(embedding,)`` for a lookup and ``(query, embedding)``
    for ``attend``; ``embedding_metadata`` is set on the cell.
    """

    embedding: Param[jax.Array]

    def __init__(
        self,
        num_embeddings: int,
        features: int,
        *,
        dtype: Dtype | None = None,
        param_dtype: Dtype = jnp.float32,
        embedding_init: Initializer = default_embed_init,
        promote_dtype: PromoteDtypeFn = promote_dtype,
        embedding_metadata: Mapping[str, Any] = NO_METADATA,
        rngs: Rngs | None = None,
        ctx: Context | None = None,
    ) -> None:
        rngs = layer_rngs("Embed", rngs, ctx)
        self.num_embeddings = num_embeddings
        self.features = features
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.promote_dtype = promote_dtype
        self.embedding = Param(embedding_init(rngs.params(), (num_embeddings, features), param_dtype))
        record_metadata(self, "embedding", embedding_init, embedding_metadata)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """The embedding rows of the integer array ``ids`` (shape ``ids.shape + (features,)``)."""
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(
                f"Embed got ids of dtype {ids.dtype}; pass integer token ids (e.g. ids.astype(jnp.int32))."
            )
        (embedding,) = self.promote_dtype((self.embedding[...],), dtype=self.dtype or self.embedding.dtype)
        if self.num_embeddings == 1:  # a single row: every id reads it (as in Flax; take would give NaN)
            return jnp.broadcast_to(embedding[0], (*ids.shape, self.features))
        return jnp.take(embedding, ids, axis=0)

    def attend(self, query: jax.Array) -> jax.Array:
        """Similarity of ``query`` (last axis ``features``) with every embedding row."""
        query, embedding = self.promote_dtype((query, self.embedding[...]), dtype=self.dtype)
        logits: jax.Array = query @ embedding.T
        return logits

    if TYPE_CHECKING:  # checkers only: nnx.state(layer) is this State class (nnx/layer_states.pyi)
        __nnx_state__: StateOf[Embed, EmbedState]
