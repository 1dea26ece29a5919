"""The structure epoch: one counter that says "some module graph changed shape".

Splitting a model walks its whole object graph. That walk is only needed when
the *structure* changed: an attribute was added, removed or rebound, a
container was mutated, a cell was swapped for another or got new metadata.
Writing a new value into an existing cell does not change structure. Every
structural mutation anywhere bumps this counter, so a cached walk is valid
while the counter has not moved: one integer compare on the fast path.

A global counter alone is coarse: creating an unrelated module (a metric, a
temporary layer) would invalidate every cached walk. So each bump also records
*which* node changed, in a short log. A cache that finds the counter moved
asks ``changed_since(then, its node ids)``: if none of the nodes it walked
changed since, it is still valid. A bump that cannot name its node (``bump()``)
invalidates everything, as does a cache older than the log.

Threads share the counter and the log, so a bump (counter and log entry
together) and a look at the log are atomic under one lock: a thread that
reads the log never pairs a count with another bump's entry, and two
threads bumping at once never lose a count.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Container

_counter: list[int] = [0]
_ANY = -1
#: The ids of the nodes changed by the most recent bumps, newest last (one entry per bump).
_log: deque[int] = deque(maxlen=4096)
_lock = threading.Lock()


def current() -> int:
    """The current structure epoch."""
    return _counter[0]


def bump(node: object | None = None) -> None:
    """Record that ``node``'s structure changed (``None``: some unknown node's did)."""
    entry = _ANY if node is None else id(node)
    with _lock:
        _log.append(entry)
        _counter[0] += 1


def changed_since(then: int, node_ids: Container[int]) -> bool:
    """Whether any node in ``node_ids`` (or an unknown node) changed after epoch ``then``."""
    return change_since(then, node_ids) != NONE


#: What ``change_since`` found: no change to the nodes, only changes it cannot
#: place (an anonymous bump, or a log too short to tell), or a change to one of them.
NONE, UNKNOWN, CHANGED = 0, 1, 2


def change_since(then: int, node_ids: Container[int]) -> int:
    """``NONE``, ``UNKNOWN`` or ``CHANGED``: what happened to ``node_ids`` after epoch ``then``."""
    with _lock:  # bumps from other threads append meanwhile
        missed = _counter[0] - then
        if missed > len(_log):
            return UNKNOWN
        found = NONE
        for k in range(1, missed + 1):
            changed = _log[-k]
            if changed == _ANY:
                found = UNKNOWN
            elif changed in node_ids:
                return CHANGED
        return found


def changes_since(then: int) -> list[int] | None:
    """The ids of the nodes changed after epoch ``then``, or ``None`` if some change
    cannot be placed (an anonymous bump, or a log too short to tell)."""
    with _lock:
        missed = _counter[0] - then
        if missed > len(_log):
            return None
        changed = [_log[-k] for k in range(1, missed + 1)]
    return None if _ANY in changed else changed
