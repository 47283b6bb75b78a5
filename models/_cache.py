"""Values derived once per snapshot object: the cache every layer shares for that pattern."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from models._snapshot import Snapshot

__all__ = ["PerSnapshot"]

T = TypeVar("T")


class PerSnapshot(Generic[T]):
    """A value built from a snapshot on first use, kept while the snapshot lives.

    Keyed by object identity (hashing a snapshot would walk every inventory row) with a weak
    reference, so an entry goes when its snapshot goes; at most ``size`` entries are kept, least
    recently used first out. The value must not hold its snapshot strongly, or it never goes.
    """

    def __init__(self, size: int) -> None:
        """An empty cache of at most ``size`` snapshots."""
        self._size = size
        self._entries: OrderedDict[int, tuple[weakref.ref[Snapshot], T]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Snapshots currently cached."""
        return len(self._entries)

    def get(self, snapshot: Snapshot, build: Callable[[Snapshot], T]) -> T:
        """The value of ``snapshot``, built with ``build`` the first time."""
        key = id(snapshot)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is snapshot:
                self._entries.move_to_end(key)
                return entry[1]
        value = build(snapshot)

        def forget(ref: weakref.ref[Snapshot]) -> None:
            """Drop the entry once its snapshot is collected."""
            with self._lock:
                current = self._entries.get(key)
                if current is not None and current[0] is ref:
                    del self._entries[key]

        with self._lock:
            self._entries[key] = (weakref.ref(snapshot, forget), value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value
