"""A multimap whose keys mostly hold one value, for the indexes kept per object or per app.

With ten thousand apps the watch cache indexes forty thousand objects by app and kind, and the
claim index each object by the apps declaring it; nearly every key holds a single value, and an
empty-or-one-element set per key costs about four times what the value's reference does. A key
here maps to its value while it has one, to a set only past one.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)  # never a set itself: a set stored is how several values are told apart


class Multimap(Generic[K, V]):
    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[K, V | set[V]] = {}

    def add(self, key: K, value: V) -> None:
        held = self._items.get(key)
        if held is None:
            self._items[key] = value
        elif isinstance(held, set):
            held.add(value)
        elif held != value:
            self._items[key] = {held, value}

    def discard(self, key: K, value: V) -> None:
        """Remove one value; a key left with none is forgotten."""
        held = self._items.get(key)
        if held is None:
            return
        if isinstance(held, set):
            held.discard(value)
            if len(held) == 1:  # a set holds two or more
                self._items[key] = next(iter(held))
        elif held == value:
            del self._items[key]

    def get(self, key: K) -> Collection[V]:
        """The key's values (empty when none); do not change what is returned."""
        held = self._items.get(key)
        if held is None:
            return ()
        return held if isinstance(held, set) else (held,)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
