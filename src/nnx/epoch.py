"""The structure epoch: one counter that says "some module graph changed shape".

Splitting a model walks its whole object graph. That walk is only needed when
the *structure* changed: an attribute was added, removed or rebound, a
container was mutated, a cell was swapped for another. Writing a new value
into an existing cell does not change structure. Every structural mutation
anywhere bumps this counter, so a cached walk stays valid exactly as long as
the counter has not moved. A global counter is coarse (a change in one model
invalidates the caches of all of them) but it is always correct and costs one
integer compare on the fast path.
"""

from __future__ import annotations

_counter: list[int] = [0]


def current() -> int:
    """The current structure epoch."""
    return _counter[0]


def bump() -> None:
    """Record that some graph's structure changed; every cached walk is stale."""
    _counter[0] += 1
