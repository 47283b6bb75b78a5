"""The per-snapshot cache: one value per snapshot object, dropped with it, bounded in size."""

from __future__ import annotations

import functools
import gc

from models import PerSnapshot
from tests.solver.network_cases import snapshot, stock, store


def test_values_are_shared_per_object_and_dropped_with_it() -> None:
    """The same object reuses its value; another gets its own; a collected one is forgotten."""
    cache: PerSnapshot[list[str]] = PerSnapshot(4)
    built: list[str] = []

    def build(snap: object) -> list[str]:
        """A fresh value, counting builds."""
        built.append("x")
        return []

    first = snapshot([store("s1")], [stock("s1", "A", 1)])
    value = cache.get(first, build)
    assert cache.get(first, build) is value
    other = first.model_copy(update={"version": "other"})
    assert cache.get(other, build) is not value
    assert (len(built), len(cache)) == (2, 2)
    del other
    gc.collect()
    assert len(cache) == 1


def test_at_most_size_snapshots_are_kept() -> None:
    """The least recently used snapshot goes first once the cache is full."""
    cache: PerSnapshot[int] = PerSnapshot(2)
    snaps = [snapshot([store("s1")], [stock("s1", "A", n)]) for n in range(1, 4)]
    for n, snap in enumerate(snaps):
        cache.get(snap, functools.partial(lambda n, _s: n, n))
    assert len(cache) == 2
    assert cache.get(snaps[0], lambda _s: 99) == 99  # evicted, so built again
    assert cache.get(snaps[2], lambda _s: 99) == 2
