"""``Rngs``: named streams of PRNG keys whose state lives in Variables.

``rngs = nnx.Rngs(0)`` or ``nnx.Rngs(params=0, dropout=1)``; ``rngs.params()``
returns a fresh key from the ``params`` stream (or from ``default`` when there
is no such stream), and ``rngs()`` one from ``default``. Each stream is a base
key (``RngKey``) plus a counter (``RngCount``); a key is
``fold_in(base, count)``. Because both are Variables, the counters travel
through ``split``/``merge`` and transforms like any other state, so a model
that draws keys inside ``nnx.jit`` keeps drawing new ones on the next call.

Streams and ``Rngs`` also carry the ``jax.random`` samplers as methods
(``rngs.normal((2, 3))``, see ``nnx.rng_draws``), and make new streams:
``split`` (independent keys along new axes), ``broadcast`` (one key repeated)
and ``fork`` (one new key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator, Mapping, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np

from nnx.filters import All, Collection, Filter, Not, Path, to_filter
from nnx.filters import Any as AnyOf
from nnx.objects import Object
from nnx.rng_draws import Draws
from nnx.variables import RngCount, RngKey

if TYPE_CHECKING:
    from nnx.object_states import RngStreamState, RngsState  # pyright: ignore[reportMissingModuleSource]
    from nnx.state import StateOf

R = TypeVar("R")

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


Sizes = int | tuple[int, ...]


def _shape(k: Sizes) -> tuple[int, ...]:
    return (k,) if isinstance(k, int) else tuple(k)


class RngStream(Object, Draws):
    """One named stream: ``stream()`` returns ``fold_in(key, count)`` and advances ``count``.

    ``RngStream(0, tag='params')``; ``key`` is a seed or key as for ``Rngs``. A
    stream whose key has a leading axis (after ``split``) draws one key per member.
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[RngStream, RngStreamState]

    def __init__(self, key: Seed, *, tag: str) -> None:
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
        fold = jax.random.fold_in
        for _ in range(key.ndim):
            fold = jax.vmap(fold)  # one key per member, over every leading axis
        return fold(key, count)

    def split(self, k: Sizes) -> RngStream:
        """A new stream whose key is ``k`` independent keys (shape ``k``), from one draw."""
        return RngStream(jax.random.split(self(), k), tag=self.tag)

    def broadcast(self, k: Sizes) -> RngStream:
        """A new stream whose key is one drawn key repeated to shape ``k``: every member
        draws the same keys."""
        key = self()
        return RngStream(jnp.broadcast_to(key, _shape(k) + key.shape), tag=self.tag)

    def fork(self, split: Sizes | None = None) -> RngStream:
        """A new, independent stream; with ``split=n`` its key has a leading axis of n."""
        return self.split(split) if split is not None else RngStream(self(), tag=self.tag)

    def __repr__(self) -> str:
        return f"RngStream({self.tag!r}, count={self.count.value})"


def _no_stream(name: str, names: list[str]) -> str:
    return (
        f"No RngStream named {name!r} found in Rngs, and no 'default' stream; streams: {names}. "
        f"Create it with nnx.Rngs({name}=seed) or give a default seed: nnx.Rngs(seed)."
    )


#: Per-stream sizes: an int or shape for every stream, or ``{filter: size or None}``
#: where a string filter names a stream and ``None`` leaves it as it is.
SizeRules = Sizes | Mapping[Filter, Sizes | None] | None


class Rngs(Object, Draws):
    """Named PRNG streams for initialisation and randomness (``rngs.params()``, ``rngs()``).

    ``rngs['params']`` is the stream too; ``'params' in rngs``, ``len(rngs)``,
    ``list(rngs)`` and ``rngs.items()`` see the streams as a mapping would.
    """

    if TYPE_CHECKING:  # checkers only: nnx.state(obj) is this State class (nnx/object_states.pyi)
        __nnx_state__: StateOf[Rngs, RngsState]

    def __init__(self, default: Seed | RngStream | Mapping[str, Seed | RngStream] | None = None, /, **streams: Seed | RngStream) -> None:
        if isinstance(default, Mapping):
            streams = {**default, **streams}
        elif default is not None:
            streams = {"default": default, **streams}
        if not streams:
            raise TypeError("Rngs needs at least one seed: Rngs(0) or Rngs(params=0, dropout=1).")
        made = {name: _stream(name, seed) for name, seed in streams.items()}  # all seeds checked first
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
        raise AttributeError(_no_stream(name, self.names()))

    def names(self) -> list[str]:
        """The names of the streams."""
        return sorted(k for k, v in self.__dict__.items() if isinstance(v, RngStream))

    def __getattr__(self, name: str) -> RngStream:
        # Private names are never streams: the graph layer probes ``_nnx_cache``.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.stream(name)

    def __getitem__(self, name: str) -> RngStream:
        try:
            return self.stream(name)
        except AttributeError:
            raise KeyError(_no_stream(name, self.names())) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and isinstance(self.__dict__.get(name), RngStream)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def items(self) -> list[tuple[str, RngStream]]:
        """``(name, stream)`` pairs, by name."""
        return [(name, self.stream(name)) for name in self.names()]

    def __call__(self) -> jax.Array:
        """A key from the ``default`` stream."""
        return self.stream("default")()

    def fork(self, split: SizeRules = None) -> Rngs:
        """New independent streams. ``split=n`` gives every stream a leading axis of n keys
        (for ``vmap``/``scan`` over n members, each drawing different keys); a mapping
        ``{filter: n}`` splits only the streams it selects (see ``split``)."""
        rules: SizeRules = {...: split} if split is None or isinstance(split, (int, tuple)) else split
        return self._derive(rules, lambda s, k: s.fork(k), otherwise=lambda s: s.fork())

    def split(self, k: SizeRules) -> Rngs:
        """New streams with ``k`` independent keys each: ``rngs.split(5)``, or per stream
        ``rngs.split({'params': 5, 'dropout': None, ...: (2, 5)})`` (``None``: keep the
        stream's key; the first matching filter decides; a string names a stream)."""
        return self._derive(k, lambda s, n: s.split(n))

    def broadcast(self, k: SizeRules) -> Rngs:
        """New streams whose key is one drawn key repeated to shape ``k``, per stream as in
        ``split``: every member of a ``vmap`` then draws the same keys."""
        return self._derive(k, lambda s, n: s.broadcast(n))

    def _derive(
        self,
        rules: SizeRules,
        make: Callable[[RngStream, Sizes], RngStream],
        otherwise: Callable[[RngStream], RngStream] | None = None,
    ) -> Rngs:
        table = size_rules(rules)
        out = object.__new__(Rngs)
        for name, stream in self.items():
            found, size = first_rule(table, (name,), stream)
            if found and size is not None:
                new = make(stream, size)
            elif otherwise is not None:
                new = otherwise(stream)
            else:
                new = RngStream(stream.key.value, tag=stream.tag)
            setattr(out, name, new)
        return out

    def __repr__(self) -> str:
        return f"Rngs({', '.join(self.names())})"


def _stream(name: str, seed: Seed | RngStream) -> RngStream:
    if isinstance(seed, RngStream):
        return RngStream(seed.key.value, tag=name)  # its key, a fresh count
    return RngStream(seed, tag=name)


def size_rules(rules: SizeRules) -> list[tuple[StreamFilter, Sizes | None]]:
    """``[(compiled filter, size)]`` from an int, a shape, ``None`` or a ``{filter: size}`` mapping."""
    if rules is None or isinstance(rules, (int, tuple)):
        return [(stream_filter(...), rules)]
    return [(stream_filter(f), n) for f, n in rules.items()]


def first_rule(table: list[tuple[StreamFilter, R]], path: Path, stream: RngStream) -> tuple[bool, R | None]:
    """Whether a rule selects ``stream`` (at ``path``), and the first such rule's value."""
    for matches, value in table:
        if matches(path, stream):
            return True, value
    return False, None


StreamFilter = Callable[[Path, RngStream], bool]


def stream_filter(f: Filter) -> StreamFilter:
    """Compile a filter over RNG streams: ``(path, stream) -> bool``.

    A string names a stream (its tag), as in Flax: ``only='params'`` is the
    ``params`` stream, not the ``params`` collection. ``...``/``True``, tuples and
    ``nnx.Not``/``All``/``Any`` combine as usual; any other filter must match both
    the stream's ``key`` and its ``count`` (at ``path + ('key',)`` and ``('count',)``).
    """
    if isinstance(f, str):
        return lambda path, stream: stream.tag == f
    if isinstance(f, tuple):
        parts = [stream_filter(p) for p in f]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        return lambda path, stream: any(p(path, stream) for p in parts)
    compiled = to_filter(f)
    if isinstance(compiled, Collection):  # a string inside nnx.Not/All/Any
        return stream_filter(compiled.name)
    if isinstance(compiled, Not):
        inner = stream_filter(compiled.inner)
        return lambda path, stream: not inner(path, stream)
    if isinstance(compiled, (All, AnyOf)):
        parts = [stream_filter(p) for p in compiled.parts]
        combine = all if isinstance(compiled, All) else any
        return lambda path, stream: combine(p(path, stream) for p in parts)

    def cells_match(path: Path, stream: RngStream) -> bool:
        key, count = stream.key, stream.count
        return compiled.matches((*path, "key"), type(key), key) and compiled.matches((*path, "count"), type(count), count)

    return cells_match
