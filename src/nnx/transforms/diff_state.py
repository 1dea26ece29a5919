"""``nnx.DiffState``: which part of an argument a gradient is taken with respect to.

``nnx.grad(f, argnums=nnx.DiffState(0, nnx.PathContains("lora")))`` is
``nnx.grad(f, argnums=0, wrt=nnx.PathContains("lora"))`` -- the spelling that
lets several arguments each have their own filter::

    nnx.grad(loss, argnums=(nnx.DiffState(0, nnx.Param), nnx.DiffState(1, LoRAParam)))
"""

from __future__ import annotations

from typing import NamedTuple

from nnx.filters import Filter


class DiffState(NamedTuple):
    """Argument ``argnum``, differentiated with respect to the state ``filter`` selects."""

    argnum: int
    filter: Filter


#: What ``argnums`` of nnx.grad / value_and_grad accepts.
ArgNums = int | DiffState | tuple[int | DiffState, ...] | list[int | DiffState]
