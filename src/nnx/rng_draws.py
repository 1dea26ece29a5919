"""``rngs.normal((2, 3))``: ``jax.random`` functions that draw their own key.

A stream (``rngs.params``) and an ``Rngs`` (its ``default`` stream) are sources
of keys, so each carries the ``jax.random`` samplers as methods that take the
next key from the source and pass everything else through::

    noise = rngs.dropout.bernoulli(0.5, (4,))   # jax.random.bernoulli(rngs.dropout(), 0.5, (4,))
    w = rngs.params.lecun_normal()((3, 4))      # the key is drawn when the initializer is called

The methods are typed as the ``jax.random`` function without its first
parameter, so a checker reads ``rngs.normal`` exactly as it reads
``jax.random.normal`` with the key filled in.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar, overload

import jax
from typing_extensions import Concatenate, ParamSpec, Self

P = ParamSpec("P")
R = TypeVar("R")


class KeySource(Protocol):
    """Anything that hands out a new key when called (a stream, an ``Rngs``)."""

    def __call__(self) -> jax.Array: ...


class KeylessInitializer(Protocol):
    """A ``jax.nn.initializers`` initializer whose key comes from a stream: ``init(shape, dtype)``."""

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> jax.Array: ...


class _Draw(Generic[P, R]):
    """A method ``source.name(*args)`` that calls ``fn(source(), *args)``."""

    def __init__(self, fn: Callable[Concatenate[Any, P], R]) -> None:
        self._fn = fn

    @overload
    def __get__(self, source: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, source: KeySource, owner: type[Any] | None = None) -> Callable[P, R]: ...
    def __get__(self, source: KeySource | None, owner: type[Any] | None = None) -> Self | Callable[P, R]:
        if source is None:
            return self
        fn = self._fn

        def draw(*args: P.args, **kwargs: P.kwargs) -> R:
            return fn(source(), *args, **kwargs)

        draw.__name__ = getattr(fn, "__name__", "draw")
        draw.__doc__ = f"``jax.random.{draw.__name__}`` with the next key of this stream."
        return draw


class _Init(Generic[P]):
    """A method ``source.name(*config)`` returning ``jax.nn.initializers.name(*config)``
    with its key taken from ``source`` at each call."""

    def __init__(self, make: Callable[P, jax.nn.initializers.Initializer]) -> None:
        self._make = make

    @overload
    def __get__(self, source: None, owner: type[Any] | None = None) -> Self: ...
    @overload
    def __get__(self, source: KeySource, owner: type[Any] | None = None) -> Callable[P, KeylessInitializer]: ...
    def __get__(
        self, source: KeySource | None, owner: type[Any] | None = None
    ) -> Self | Callable[P, KeylessInitializer]:
        if source is None:
            return self
        make = self._make

        def configure(*args: P.args, **kwargs: P.kwargs) -> KeylessInitializer:
            init = make(*args, **kwargs)

            def keyless(shape: Sequence[int], dtype: Any = None) -> jax.Array:
                if dtype is None:
                    return init(source(), shape)
                return init(source(), shape, dtype)

            return keyless

        return configure


class Draws:
    """The ``jax.random`` samplers and key-taking initializers as methods of a key source.

    ``normal``, ``uniform``, ``orthogonal`` and ``truncated_normal`` are the
    ``jax.random`` samplers; the initializer of the same name is reached as
    ``nnx.initializers.normal()`` with a key, as in Flax.
    """

    bits = _Draw(jax.random.bits)
    uniform = _Draw(jax.random.uniform)
    randint = _Draw(jax.random.randint)
    permutation = _Draw(jax.random.permutation)
    choice = _Draw(jax.random.choice)
    normal = _Draw(jax.random.normal)
    multivariate_normal = _Draw(jax.random.multivariate_normal)
    truncated_normal = _Draw(jax.random.truncated_normal)
    bernoulli = _Draw(jax.random.bernoulli)
    beta = _Draw(jax.random.beta)
    cauchy = _Draw(jax.random.cauchy)
    dirichlet = _Draw(jax.random.dirichlet)
    exponential = _Draw(jax.random.exponential)
    gamma = _Draw(jax.random.gamma)
    loggamma = _Draw(jax.random.loggamma)
    poisson = _Draw(jax.random.poisson)
    gumbel = _Draw(jax.random.gumbel)
    categorical = _Draw(jax.random.categorical)
    laplace = _Draw(jax.random.laplace)
    logistic = _Draw(jax.random.logistic)
    pareto = _Draw(jax.random.pareto)
    t = _Draw(jax.random.t)
    chisquare = _Draw(jax.random.chisquare)
    f = _Draw(jax.random.f)
    rademacher = _Draw(jax.random.rademacher)
    maxwell = _Draw(jax.random.maxwell)
    double_sided_maxwell = _Draw(jax.random.double_sided_maxwell)
    weibull_min = _Draw(jax.random.weibull_min)
    orthogonal = _Draw(jax.random.orthogonal)
    generalized_normal = _Draw(jax.random.generalized_normal)
    ball: _Draw[..., jax.Array] = _Draw(jax.random.ball)  # jax leaves its return type unknown
    rayleigh = _Draw(jax.random.rayleigh)
    wald = _Draw(jax.random.wald)
    geometric = _Draw(jax.random.geometric)
    triangular = _Draw(jax.random.triangular)
    lognormal = _Draw(jax.random.lognormal)
    binomial = _Draw(jax.random.binomial)
    multinomial = _Draw(jax.random.multinomial)

    delta_orthogonal = _Init(jax.nn.initializers.delta_orthogonal)
    glorot_normal = _Init(jax.nn.initializers.glorot_normal)
    glorot_uniform = _Init(jax.nn.initializers.glorot_uniform)
    he_normal = _Init(jax.nn.initializers.he_normal)
    he_uniform = _Init(jax.nn.initializers.he_uniform)
    kaiming_normal = _Init(jax.nn.initializers.kaiming_normal)
    kaiming_uniform = _Init(jax.nn.initializers.kaiming_uniform)
    lecun_normal = _Init(jax.nn.initializers.lecun_normal)
    lecun_uniform = _Init(jax.nn.initializers.lecun_uniform)
    variance_scaling = _Init(jax.nn.initializers.variance_scaling)
    xavier_normal = _Init(jax.nn.initializers.xavier_normal)
    xavier_uniform = _Init(jax.nn.initializers.xavier_uniform)
