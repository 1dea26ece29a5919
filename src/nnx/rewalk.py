"""Walking a graph again after a structural change, reusing what did not change.

A cached walk goes stale as soon as one node it visited changes structure,
but the new walk mostly repeats the old one. The subtree of a container that
holds no changed node is described, numbered and ordered exactly as before,
*if the walk reaches it in the same state*: the same nodes visited before it,
in the same order, and by the same path. Its description, nodes and leaves
can then be copied from the old walk (list slices, in C) instead of walked.

The mechanism, in three steps:

1. Every walk records a ``Span`` for each container whose subtree it first
   visited with at least ``MIN_SPAN`` nodes: where the container's nodes and
   leaves end in the walk's lists, its description and its path link.
2. A walk after a change that named its nodes (the epoch log says which) gets
   a ``Rewalk``: the old walk and the old indices of the changed nodes, if
   some span holds none of them.
3. On entering a container, the walk asks ``Rewalk.take``. It checks that the
   old walk had this container at the same index, by the same path, with no
   changed node in its span, and that every node visited so far is the old
   walk's node at that index (checked once per node, from where the last check
   stopped). If so it appends the span to the new walk's lists and returns the
   description; otherwise the walk describes the container itself.

Sharing needs no special case: a reference from inside the span to a node
visited before it names that node's index, which the check kept the same.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import is_
from typing import Any, NamedTuple

#: The smallest subtree (in nodes: containers and cells) worth a span. Smaller
#: ones (a layer with a few cells) cost about as much to walk as to check.
MIN_SPAN = 8


class Span(NamedTuple):
    """Where a container's first visit ended in a walk's lists, and what it gave."""

    node_end: int
    leaf_start: int
    leaf_end: int
    description: tuple[Any, ...]
    link: Any


class Walked(NamedTuple):
    """What a walk kept to be reused: its lists (in the walk's order) and its spans."""

    nodes: list[Any]
    ids: dict[int, int]
    cells: list[Any]
    links: list[Any]
    kinds: list[Any]
    metas: list[Any]
    spans: dict[int, Span]


def changed_indices(old: Walked, changed_ids: list[int]) -> list[int] | None:
    """The old walk's indices of the changed nodes, sorted; ``None`` when every span
    holds one of them (nothing could be reused: the walk had better start afresh,
    dropping the old one first so that its memory is reused)."""
    changed = sorted({old.ids[c] for c in changed_ids if c in old.ids})
    for i, span in old.spans.items():  # innermost first: the likeliest to be untouched
        k = bisect_left(changed, i)
        if k == len(changed) or changed[k] >= span.node_end:
            return changed
    return None


class Rewalk:
    """The old walk, lent to a new walk of the same root (see the module docstring)."""

    __slots__ = ("_old", "_changed", "_new", "_checked")

    def __init__(self, old: Walked, changed: list[int], new: Walked) -> None:
        self._old = old
        #: The old indices of the changed nodes, sorted (see ``changed_indices``).
        self._changed = changed
        #: The new walk's lists, which ``take`` extends.
        self._new = new
        #: How many of the new walk's first nodes are known to be the old walk's.
        self._checked = 0

    def take(self, container: Any, link: Any) -> tuple[Any, ...] | None:
        """The old description of ``container`` after appending its span to the new
        walk, or ``None`` if the walk must describe it itself."""
        old, new = self._old, self._new
        i = len(new.nodes)
        span = old.spans.get(i)
        if span is None or old.nodes[i] is not container:
            return None
        end = span.node_end
        k = bisect_left(self._changed, i)
        if k < len(self._changed) and self._changed[k] < end:
            return None  # a changed node lies in the span
        if span.link != link:
            return None  # reached by another path: its leaves' paths differ
        checked = self._checked
        if checked < 0 or not all(map(is_, new.nodes[checked:i], old.nodes[checked:i])):
            # The new walk visited other nodes before this one: indices differ from here on.
            self._checked = -1
            return None
        segment = old.nodes[i:end]
        new.nodes.extend(segment)
        new.ids.update(zip(map(id, segment), range(i, end)))
        shift = len(new.cells) - span.leaf_start
        leaves = slice(span.leaf_start, span.leaf_end)
        new.cells.extend(old.cells[leaves])
        new.links.extend(old.links[leaves])
        new.kinds.extend(old.kinds[leaves])
        new.metas.extend(old.metas[leaves])
        # Kept for the next walk; the spans nested in this one are not (copying them
        # would cost as much as what they save): a later change inside this container
        # walks it whole once, and records its inner spans again.
        new.spans[i] = span if shift == 0 else span._replace(leaf_start=span.leaf_start + shift, leaf_end=span.leaf_end + shift)
        self._checked = end
        return span.description
