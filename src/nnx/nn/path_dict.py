"""``PathDict``: cells keyed by the path of the parameter they belong to.

A layer that keeps something per parameter of a wrapped layer (``WeightNorm``'s
scales, ``SpectralNorm``'s power-iteration vectors) keys it by that
parameter's path, as Flax does: ``norm.batch_stats[("layers", 0, "kernel",
"u")]``. State paths are made of attribute names, string keys and indices,
never tuples, so the entries are stored nested: the first part of the key is
an attribute, the rest are ``nnx.Dict`` keys. The state path of an entry is
therefore its key (``batch_stats/layers/0/kernel/u``) and ``split``/``merge``
need nothing special.
"""

from __future__ import annotations

from typing import Any, Generic, Iterator, Mapping, TypeVar

from nnx.containers import Dict
from nnx.filters import Key
from nnx.objects import Object
from nnx.state import path_order

V = TypeVar("V")
Path = tuple[Key, ...]


def _is_branch(value: Any) -> bool:
    return isinstance(value, Dict)


class PathDict(Object, Generic[V]):
    """A mapping from path tuples to cells: ``d[("layers", 0, "kernel")]``.

    Keys are non-empty tuples of ``str``/``int`` whose first part is a string
    (a parameter path always starts at an attribute); one key is never a
    prefix of another. ``d["layers/0/kernel"]`` reads the same entry.
    """

    def __init__(self, entries: Mapping[Path, V] | None = None) -> None:
        nested: dict[str, Any] = {}
        for path, value in (entries or {}).items():
            _check_key(path)
            branch: dict[Any, Any] = nested
            for part in path[:-1]:
                child = branch.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValueError(f"PathDict: key {path!r} passes through the entry at {part!r}; no key may extend another.")
                branch = child  # pyright: ignore[reportUnknownVariableType]
            if path[-1] in branch:
                raise ValueError(f"PathDict: key {path!r} is given twice or is a prefix of another key.")
            branch[path[-1]] = value
        for name, sub in nested.items():
            setattr(self, name, sub)  # plain dicts become nnx.Dict on assignment

    def _lookup(self, key: Path | str) -> tuple[Any, Key]:
        """The container holding ``key``'s entry, and the entry's key in it; ``KeyError`` if absent."""
        path = _as_path(key)
        if not path or not isinstance(path[0], str) or path[0] not in self.__dict__:
            raise KeyError(self._missing(key))
        holder: Any = self.__dict__
        for part in path[:-1]:
            child: Any = holder.get(part)
            if not _is_branch(child):
                raise KeyError(self._missing(key))
            holder = child
        last: Key = path[-1]
        if last not in holder or _is_branch(holder[last]):
            raise KeyError(self._missing(key))
        return holder, last

    def _missing(self, key: object) -> str:
        return f"PathDict has no entry {key!r}; its keys: {sorted(self.keys(), key=str)}"

    def __getitem__(self, key: Path | str) -> V:
        holder, last = self._lookup(key)
        value: V = holder[last]
        return value

    def __setitem__(self, key: Path | str, value: V) -> None:
        """Replace an existing entry (new keys are given to the constructor)."""
        holder, last = self._lookup(key)
        if holder is self.__dict__:
            setattr(self, str(last), value)
        else:
            holder[last] = value

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, (tuple, str)):
            return False
        try:
            self._lookup(key)  # pyright: ignore[reportUnknownArgumentType]  # a tuple of unknown parts
        except KeyError:
            return False
        return True

    def keys(self) -> list[Path]:
        """The path of every entry, in state order."""
        return [path for path, _ in self.items()]

    def values(self) -> list[V]:
        """Every entry, in state order."""
        return [value for _, value in self.items()]

    def items(self) -> list[tuple[Path, V]]:
        """``(path, entry)`` pairs, in state order."""
        found: list[tuple[Path, V]] = []
        stack: list[tuple[Path, Any]] = [((name,), value) for name, value in sorted(self.__dict__.items(), reverse=True)]
        while stack:
            path, value = stack.pop()
            if _is_branch(value):
                stack.extend(((*path, k), v) for k, v in sorted(value.items(), key=lambda kv: path_order((kv[0],)), reverse=True))
            else:
                found.append((path, value))
        return found

    def __iter__(self) -> Iterator[Path]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.items())

    def __repr__(self) -> str:
        return f"PathDict({dict(self.items())!r})"


def _as_path(key: Path | str) -> Path:
    """A key as a path tuple: ``"layers/0/kernel"`` -> ``("layers", 0, "kernel")``."""
    if isinstance(key, str):
        return tuple(int(p) if p.isdigit() else p for p in key.split("/"))
    return key


def _check_key(path: object) -> None:
    if (
        not isinstance(path, tuple)
        or not path
        or not isinstance(path[0], str)
        or not all(isinstance(p, (str, int)) for p in path)  # pyright: ignore[reportUnknownVariableType]
    ):
        raise TypeError(
            f"PathDict: key {path!r} is not a parameter path; give a non-empty tuple of str/int parts "
            "starting with an attribute name, e.g. ('layers', 0, 'kernel')."
        )
