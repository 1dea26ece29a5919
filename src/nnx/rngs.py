"""``Rngs``: named streams of PRNG keys whose state lives in Variables.

``rngs = nnx.Rngs(0)`` or ``nnx.Rngs(params=0, dropout=1)``; ``rngs.params()``
returns a fresh key from the ``params`` stream (or from ``default`` when there
is no such stream), and ``rngs()`` one from ``default``. Each stream is a base
key (``RngKey``) plus a counter (``RngCount``); a key is
``fold_in(base, count)``. Because both are Variables, the counters travel
through ``split``/``merge`` and transforms like any other state, so a model
that draws keys inside ``nnx.jit`` keeps drawing new ones on the next call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, cast

import jax
import jax.numpy as jnp
import numpy as np

from nnx.objects import Object
from nnx.variables import RngCount, RngKey

if TYPE_CHECKING:
    from nnx.object_states import RngStreamState, RngsState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf


Seed = int | jax.Array


_SEED_RANGE = (-(2**63), 2**63 - 1)


def as_key(seed: Seed, name: str = "default") -> jax.Array:
    """A typed PRNG key from an int seed, a typed key, or a raw ``uint32[2]`` key.

    ``name`` is the stream the seed is for (named by the error a bad seed gets)."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        if not _SEED_RANGE[0] <= seed <= _SEED_RANGE[1]:
            raise ValueError(
                f"Rngs: the seed {seed} for stream {name!r} is out of range; an int seed must "
                f"fit in 64 bits ({_SEED_RANGE[0]} to {_SEED_RANGE[1]}). Reduce it, e.g. seed % 2**63."
            )
        return jax.random.key(seed)
    dtype = getattr(seed, "dtype", None)
    shape = getattr(seed, "shape", None)
    if dtype is not None and shape is not None and isinstance(seed, (jax.Array, np.ndarray, np.generic)):
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            return seed
        if dtype == jnp.uint32 and tuple(shape)[-1:] == (2,):
            return cast("jax.Array", jax.random.wrap_key_data(seed))  # untyped in jax
        if jnp.issubdtype(dtype, jnp.integer) and len(shape) == 0:
            return jax.random.key(seed)
    shown = repr(seed)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise TypeError(
        f"Rngs: cannot make a PRNG key for stream {name!r} from {shown} ({type(seed).__name__}). Accepted: an "
        "int seed (e.g. Rngs(0) or Rngs(dropout=1)), a typed key jax.random.key(...), a raw "
        "uint32[2] key, or a 0-d integer array."
    )


class RngStream(Object):
    """One named stream: ``stream()`` returns ``fold_in(key, count)`` and advances ``count``."""

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[RngStream, RngStreamState]

    def __init__(self, tag: str, key: Seed) -> None:
        self.tag = tag
        key = as_key(key, tag)
        self.key = RngKey(key)
        self.count = RngCount(jnp.zeros(key.shape, dtype=jnp.uint32))

    def __call__(self) -> jax.Array:
        key = self.key.value
        count = self.count.value
        self.count.value = count + 1
        if key.ndim == 0:
            return jax.random.fold_in(key, count)
        return jax.vmap(jax.random.fold_in)(key, count)  # a split stream: one key per member

    def fork(self, split: int | tuple[int, ...] | None = None) -> RngStream:
        """A new, independent stream; with ``split=n`` its key has a leading axis of n."""
        key = self()
        if split is not None:
            key = jax.random.split(key, split)
        return RngStream(self.tag, key)

    def __repr__(self) -> str:
        return f"RngStream({self.tag!r}, count={self.count.value})"


class Rngs(Object):
    """Named PRNG streams for initialisation and randomness (``rngs.params()``, ``rngs()``)."""

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[Rngs, RngsState]

    def __init__(self, default: Seed | Mapping[str, Seed] | None = None, /, **streams: Seed) -> None:
        if isinstance(default, Mapping):
            streams = {**default, **streams}
        elif default is not None:
            streams = {"default": default, **streams}
        if not streams:
            raise TypeError("Rngs needs at least one seed: Rngs(0) or Rngs(params=0, dropout=1).")
        made = {name: RngStream(name, seed) for name, seed in streams.items()}  # all seeds checked first
        for name, stream in made.items():
            setattr(self, name, stream)

    def stream(self, name: str) -> RngStream:
        """The stream called ``name``, falling back to ``default``."""
        found = self.__dict__.get(name)
        if isinstance(found, RngStream):
            return found
        default = self.__dict__.get("default")
        if isinstance(default, RngStream):
            return default
        raise AttributeError(
            f"Rngs has no stream {name!r} and no 'default' stream; streams: {self.names()}. "
            f"Create it with nnx.Rngs({name}=seed) or give a default seed: nnx.Rngs(seed)."
        )

    def names(self) -> list[str]:
        """The names of the streams."""
        return sorted(k for k, v in self.__dict__.items() if isinstance(v, RngStream))

    def __getattr__(self, name: str) -> RngStream:
        # Private names are never streams: the graph layer probes ``_nnx_cache``.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.stream(name)

    def __call__(self) -> jax.Array:
        """A key from the ``default`` stream."""
        return self.stream("default")()

    def fork(self, split: int | tuple[int, ...] | None = None) -> Rngs:
        """New independent streams; ``split=n`` gives every stream a leading axis of n keys
        (for ``vmap``/``scan`` over n members, each drawing different keys)."""
        forked = object.__new__(Rngs)
        for name in self.names():
            setattr(forked, name, self.stream(name).fork(split))
        return forked

    def split(self, n: int | tuple[int, ...]) -> Rngs:
        """``fork(split=n)``."""
        return self.fork(split=n)

    def __repr__(self) -> str:
        return f"Rngs({', '.join(self.names())})"
