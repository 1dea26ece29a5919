"""``nnx.data``: Flax 0.12's marker for "this attribute is data, not static"."""

from __future__ import annotations

from typing import TypeVar

A = TypeVar("A")


def data(value: A, /) -> A:
    """``value`` unchanged: Flax code that marks attributes as data runs as written.

    nnx decides by value, not by marker: arrays, cells, modules, ``Rngs`` and
    lists/dicts/tuples holding them are state; anything else (a number,
    ``None``, a string) is static and lives in the ``GraphDef``. To make a
    Python number state, hold it in a cell: ``self.count = nnx.Variable(jnp.array(0))``.
    """
    return value
