"""A progress bar for the examples, drawn by rich (which nnx.tabulate also uses).

``for step in (bar := progress(range(n), desc="train")): ... bar.set_postfix(loss=...)``
draws a transient bar on a terminal and nothing when output is not a terminal (CI).
"""

from __future__ import annotations

import sys
from typing import Generic, Iterable, Iterator, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

T = TypeVar("T")


class progress(Generic[T]):  # noqa: N801 - used like a function, as tqdm is
    """Iterate over ``items`` while showing a bar; ``set_postfix`` shows metrics beside it."""

    def __init__(self, items: Iterable[T], *, desc: str = "", total: int | None = None, leave: bool = False) -> None:
        self._items = items
        self._total = total if total is not None else _length(items)
        self._desc = desc
        self._leave = leave
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __iter__(self) -> Iterator[T]:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[note]}"))
        with Progress(*columns, transient=not self._leave, disable=not sys.stdout.isatty()) as bar:
            self._progress = bar
            self._task = bar.add_task(self._desc, total=self._total, note="")
            for item in self._items:
                yield item
                bar.advance(self._task)

    def set_postfix(self, **fields: object) -> None:
        """Show ``name=value`` pairs after the bar (e.g. the current loss)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, note=" ".join(f"{k}={v}" for k, v in fields.items()))


def _length(items: Iterable[object]) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]  # only sized iterables have one
    except TypeError:
        return None
