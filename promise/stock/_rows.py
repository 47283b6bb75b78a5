"""Stock rows, the state version and row overlays: what every transaction reads and stamps.

Writers that change what a promise could see end by bumping the state version (a counter row,
always locked last, so versions are committed in order) and stamping the rows they touched
with it; a reader that saw version V fetches the rows stamped after V. The live snapshot
generation sits beside the version in ``stock_meta``, so one statement reads both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from promise.stock.access import AccessQueries
from promise.stock.backend import EMPTY_OVERLAY, Changes, HeldLine, Key, RowOverlay, Versions
from promise.stock.errors import SnapshotMovedError
from promise.stock.events import CountState
from promise.stock.outbox import OutboxQueries

__all__ = [
    "KEY_CHUNK",
    "VERSIONS_SELECT",
    "Cursor",
    "RowQueries",
    "chunks",
    "key_filter",
]

# Rows per key filter: well under every driver's parameter limit.
KEY_CHUNK = 400
VERSIONS_SELECT = "SELECT key, value FROM stock_meta WHERE key IN ('version', 'snapshot', 'prices')"


class Cursor(Protocol):
    """The DB-API cursor surface both drivers share."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def execute(self, query: Any, params: Any = ..., /) -> Any:
        """Run one statement."""
        ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any:
        """Run one statement per parameter row."""
        ...

    def fetchone(self) -> Any:
        """Next row or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Remaining rows."""
        ...


def chunks(keys: Sequence[Key]) -> Iterator[Sequence[Key]]:
    """Key lists small enough for one statement."""
    for start in range(0, len(keys), KEY_CHUNK):
        yield keys[start : start + KEY_CHUNK]


def key_filter(keys: Sequence[Key], extra: str = "") -> tuple[str, list[str]]:
    """A predicate matching the rows of ``keys`` (each also meeting ``extra``), and parameters.

    Written as ORed key equalities rather than ``(node_id, sku) IN (VALUES ...)``: SQLite
    answers the OR form with one index search per key but scans the table for the IN form;
    ``extra`` sits inside each term so that the search also narrows on the status column.
    """
    terms = " OR ".join(f"(node_id = ? AND sku = ?{extra})" for _ in keys)
    return f"({terms})", [part for key in keys for part in key]


# Which rows an overlay read covers: extra condition per table → (predicate, parameters).
RowFilter = Callable[[str], tuple[str, Sequence[Any]]]
LOT_OPEN = " AND closed = 0"
LINE_LIVE = " AND status IN ('held', 'confirmed')"


class RowQueries(AccessQueries, OutboxQueries):
    """Versions, overlays and the live generation of the stock rows, inside a transaction."""

    for_update = ""  # row-lock suffix of a SELECT inside a write transaction
    for_share = ""  # shared row-lock suffix (SQLite's one writer needs neither)
    schema_version = 0  # set when the store is opened and migrated

    def _key_filter(self, keys: Sequence[Key], extra: str = "") -> tuple[str, list[Any]]:
        """A predicate matching the rows of ``keys`` (each also meeting ``extra``)."""
        return key_filter(keys, extra)

    def _bump(self, cur: Cursor, keys: Iterable[Key]) -> int:
        """Next state version, stamped on ``keys``; the counter row is always locked last."""
        row = self._run(
            cur, "UPDATE stock_meta SET value = value + 1 WHERE key = 'version' RETURNING value"
        ).fetchone()
        version = int(row[0])
        for chunk in chunks(sorted(keys)):
            # One statement per chunk of rows (they are locked already, in key order).
            where, params = self._key_filter(chunk)
            self._run(
                cur,
                f"UPDATE stock_rows SET changed_version = ? WHERE {where}",  # noqa: S608 - only constant fragments and ? markers
                [version, *params],
            )
        return version

    def _version(self, cur: Cursor) -> int:
        """The state version."""
        row = self._run(cur, "SELECT value FROM stock_meta WHERE key = 'version'").fetchone()
        return int(row[0])

    @staticmethod
    def _versions_of(rows: Sequence[tuple[Any, Any]]) -> Versions:
        """Versions from the rows of ``VERSIONS_SELECT``."""
        values = {str(key): int(value) for key, value in rows}
        return Versions(
            stock=values["version"],
            snapshot=values.get("snapshot", 0),
            prices=values.get("prices", 0),
        )

    def _live_generation(self, cur: Cursor, suffix: str) -> int:
        """The live snapshot generation, read with a row-lock ``suffix`` (or none)."""
        row = self._run(
            cur,
            "SELECT value FROM stock_meta WHERE key = 'snapshot'" + suffix,  # noqa: S608 - a constant lock suffix
        ).fetchone()
        return int(row[0])

    def _judged_under(self, cur: Cursor, generation: int | None) -> int | None:
        """Refuse to write what was judged under another snapshot than the live one.

        The shared lock on the generation row makes a swap wait for the holds and events being
        judged now, and a hold that starts after a swap read the new generation.
        """
        if generation is None:
            return None
        live = self._live_generation(cur, self.for_share)
        if live != generation:
            raise SnapshotMovedError(generation, live)
        return generation

    def _overlays(self, cur: Cursor, rows: RowFilter) -> dict[Key, RowOverlay]:
        """Overlays of the rows ``rows`` selects in each table."""
        counts: dict[Key, CountState] = {}
        where, params = rows("")
        for node, sku, seq, value, delta_sum in self._run(
            cur,
            f"SELECT node_id, sku, count_seq, count_value, delta_sum FROM stock_rows WHERE {where}",  # noqa: S608 - only constant fragments and ? markers
            params,
        ).fetchall():
            counts[(node, sku)] = CountState(
                None if seq is None else int(seq), int(value), int(delta_sum)
            )
        lots: dict[Key, list[tuple[int, int]]] = {}
        where, params = rows(LOT_OPEN)
        for node, sku, quantity, eta in self._run(
            cur,
            "SELECT node_id, sku, quantity, eta FROM stock_lots "  # noqa: S608 - only constant fragments and ? markers
            f"WHERE {where} AND quantity IS NOT NULL",
            params,
        ).fetchall():
            lots.setdefault((node, sku), []).append((int(quantity), int(eta)))
        holds: dict[Key, list[HeldLine]] = {}
        where, params = rows(LINE_LIVE)
        for node, sku, quantity, status, expires_at in self._run(
            cur,
            "SELECT node_id, sku, quantity - consumed, status, expires_at FROM stock_hold_lines "  # noqa: S608 - only constant fragments and ? markers
            f"WHERE {where}",
            params,
        ).fetchall():
            holds.setdefault((node, sku), []).append(
                HeldLine(int(quantity), status == "confirmed", int(expires_at))
            )
        return {
            key: RowOverlay(
                count=counts.get(key, CountState()),
                lots=tuple(lots.get(key, ())),
                holds=tuple(holds.get(key, ())),
            )
            for key in counts.keys() | lots.keys() | holds.keys()
        }

    def _overlays_of(self, cur: Cursor, keys: Sequence[Key]) -> dict[Key, RowOverlay]:
        """Overlays of ``keys``; rows never touched come back empty."""
        out: dict[Key, RowOverlay] = {}
        for chunk in chunks(keys):
            out.update(self._overlays(cur, functools.partial(self._key_filter, chunk)))
        return {key: out.get(key, EMPTY_OVERLAY) for key in keys}

    # --- reads ----------------------------------------------------------------------------

    def state_version(self) -> int:
        """The current state version (one cheap query)."""
        return self.versions().stock

    def versions(self) -> Versions:
        """The stock version and the live snapshot generation (one cheap query)."""
        return self._read(lambda cur: self._versions_of(self._run(cur, VERSIONS_SELECT).fetchall()))

    def changes(self, since: int, keys: Sequence[Key] = ()) -> Changes:
        """Overlays of every row changed after version ``since`` and of ``keys``, consistently."""

        def work(cur: Cursor) -> Changes:
            version = self._version(cur)
            changed = (
                "(node_id, sku) IN (SELECT node_id, sku FROM stock_rows WHERE changed_version > ?)"
            )
            rows = self._overlays(cur, lambda extra: (changed + extra, (since,)))
            extra = [key for key in keys if key not in rows]
            if extra:
                rows.update(self._overlays_of(cur, extra))
            return Changes(version, rows)

        return self._read(work)

    def overlays(self, keys: Sequence[Key]) -> Changes:
        """Overlays of the given rows (rows never touched come back empty)."""
        return self._read(lambda cur: Changes(self._version(cur), self._overlays_of(cur, keys)))
