"""The opportunity-cost price table in the authority: versioned, written whole, read whole.

A price table (``models.StockPrices``: cents per unit per (node, SKU)) lives beside live stock,
not in the snapshot, so re-pricing never swaps the network. The authority keeps:

- ``price_versions``: one row per version ever written (when, by whom, from what, how many
  pairs priced), kept for audit;
- ``price_rows``: the pairs of the current version only (absent pairs cost nothing), replaced
  whole by each new version;
- the ``prices`` counter of ``stock_meta``: the current version, read in the same statement as
  the stock version and the snapshot generation, so every request sees a new version for free.

A write takes the counter row first (``FOR UPDATE``), so writers are serialised and versions
grow by one in commit order whatever host writes; it replaces the rows, records the version's
metadata, its audit entry and (when publishing) an outbox message in the same transaction.
``expect`` makes the write conditional on the version it replaces: of two hosts re-pricing
from the same version, one writes and the other learns it was beaten (``PricesMovedError``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from promise.stock.access import AccessQueries, where_clause
from promise.stock.backend import Clock, from_us
from promise.stock.errors import PricesMovedError
from promise.stock.outbox import ALL_NODES, Change, OutboxQueries

__all__ = ["PRICES_SCHEMA", "PriceQueries", "PriceRow", "PriceTable"]

# (node_id, sku, cents)
PriceRow = tuple[str, str, int]
# Rows per INSERT round: well under every driver's parameter limit per statement.
_INSERT_CHUNK = 5_000

PRICES_SCHEMA = (
    """CREATE TABLE price_versions (
        version BIGINT PRIMARY KEY,
        written_at BIGINT NOT NULL,
        computed_at BIGINT,
        note TEXT NOT NULL,
        origin TEXT NOT NULL,
        principal TEXT,
        priced BIGINT NOT NULL,
        snapshot_generation BIGINT)""",
    """CREATE TABLE price_rows (
        sku TEXT NOT NULL,
        node_id TEXT NOT NULL,
        cents BIGINT NOT NULL,
        PRIMARY KEY (sku, node_id))""",
    # GET /v1/prices?node_id= reads one node's pairs as an index range.
    "CREATE INDEX price_rows_node ON price_rows (node_id, sku)",
    # The re-pricing job counts the holds placed since the table was written: one index range.
    "CREATE INDEX stock_holds_created ON stock_holds (created_at)",
    "INSERT INTO stock_meta (key, value) VALUES ('prices', 0) ON CONFLICT (key) DO NOTHING",
)
_VERSION_COLUMNS = (
    "version, written_at, computed_at, note, origin, principal, priced, snapshot_generation"
)


@dataclasses.dataclass(frozen=True, slots=True)
class PriceTable:
    """One version of the price table: when and by whom it was written, how many pairs."""

    version: int
    written_at: int  # µs, the authority's clock
    computed_at: int | None  # µs, when the prices were worked out (the pricing run's instant)
    note: str
    origin: str  # upload, cli or job
    principal: str | None
    priced: int  # (node, SKU) pairs with a price above zero
    snapshot_generation: int | None  # the live network the table was checked against


def _table_of(row: Sequence[Any]) -> PriceTable:
    """A version from a row of ``_VERSION_COLUMNS``."""
    return PriceTable(
        version=int(row[0]),
        written_at=int(row[1]),
        computed_at=None if row[2] is None else int(row[2]),
        note=str(row[3]),
        origin=str(row[4]),
        principal=None if row[5] is None else str(row[5]),
        priced=int(row[6]),
        snapshot_generation=None if row[7] is None else int(row[7]),
    )


class PriceQueries(AccessQueries, OutboxQueries):
    """Reading and writing the price table in the authority's database."""

    for_update = ""  # row-lock suffix of a SELECT inside a write transaction (see the backend)

    def _price_table(self, cur: Any) -> PriceTable | None:
        """The current version's metadata in the open transaction (None before the first)."""
        row = self._run(
            cur,
            f"SELECT {_VERSION_COLUMNS} FROM price_versions "  # noqa: S608 - constant column list
            "WHERE version = (SELECT value FROM stock_meta WHERE key = 'prices')",
        ).fetchone()
        return None if row is None else _table_of(row)

    def price_table(self) -> PriceTable | None:
        """The current version's metadata (None while no table was ever written)."""
        return self._read(self._price_table)

    def load_prices(self) -> tuple[PriceTable | None, list[PriceRow]]:
        """The current version and all its rows, read together."""

        def work(cur: Any) -> tuple[PriceTable | None, list[PriceRow]]:
            table = self._price_table(cur)
            if table is None:
                return None, []
            rows = self._run(cur, "SELECT node_id, sku, cents FROM price_rows").fetchall()
            return table, [(str(n), str(s), int(c)) for n, s, c in rows]

        return self._read(work)

    def price_page(
        self,
        *,
        sku: str | None = None,
        node_id: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> tuple[PriceTable | None, list[PriceRow]]:
        """The current version and up to ``limit`` of its rows after ``after`` (sku, node_id).

        Rows come in (sku, node_id) order, filtered to one SKU and/or one node.
        """
        where, params = where_clause(
            [
                None if sku is None else ("sku = ?", (sku,)),
                None if node_id is None else ("node_id = ?", (node_id,)),
                # Spelled out: row-value comparison is not in every dialect the backends speak.
                None
                if after is None
                else ("(sku > ? OR (sku = ? AND node_id > ?))", (after[0], *after)),
            ]
        )
        params.append(limit)

        def work(cur: Any) -> tuple[PriceTable | None, list[PriceRow]]:
            table = self._price_table(cur)
            if table is None or limit == 0:
                return table, []
            rows = self._run(
                cur,
                "SELECT node_id, sku, cents FROM price_rows "  # noqa: S608 - constant clauses and ? markers
                f"{where}ORDER BY sku, node_id LIMIT ?",
                params,
            ).fetchall()
            return table, [(str(n), str(s), int(c)) for n, s, c in rows]

        return self._read(work)

    def write_prices(
        self,
        rows: Sequence[PriceRow],
        clock: Clock,
        *,
        origin: str,
        note: str = "",
        computed_at: int | None = None,
        actor: str | None = None,
        expect: int | None = None,
        snapshot_generation: int | None = None,
    ) -> PriceTable:
        """Make ``rows`` the next version of the table, atomically and audited; its metadata.

        Zero prices are not stored (an absent pair costs nothing). With ``expect`` the write
        happens only if ``expect`` is the current version, else ``PricesMovedError``.
        """
        priced = [(sku, node_id, int(cents)) for node_id, sku, cents in rows if cents]

        def work(cur: Any, now: int) -> PriceTable:
            # The counter row first: concurrent writers queue here, versions follow commits.
            current = int(
                self._run(
                    cur,
                    "SELECT value FROM stock_meta WHERE key = 'prices'" + self.for_update,  # noqa: S608 - a constant lock suffix
                ).fetchone()[0]
            )
            if expect is not None and current != expect:
                raise PricesMovedError(expect, current)
            table = PriceTable(
                version=current + 1,
                written_at=now,
                computed_at=computed_at,
                note=note,
                origin=origin,
                principal=actor,
                priced=len(priced),
                snapshot_generation=snapshot_generation,
            )
            self._run(cur, "DELETE FROM price_rows")
            for start in range(0, len(priced), _INSERT_CHUNK):
                cur.executemany(
                    self._sql("INSERT INTO price_rows (sku, node_id, cents) VALUES (?, ?, ?)"),
                    priced[start : start + _INSERT_CHUNK],
                )
            self._run(
                cur,
                f"INSERT INTO price_versions ({_VERSION_COLUMNS}) "  # noqa: S608 - constant column list
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                dataclasses.astuple(table),
            )
            self._run(
                cur,
                "UPDATE stock_meta SET value = ? WHERE key = 'prices'",
                (table.version,),
            )
            summary = {
                "version": table.version,
                "origin": origin,
                "priced": table.priced,
                "note": note,
                "replaced": current,
            }
            self._audit(
                cur, now, actor, action="prices.write", subject=str(table.version), detail=summary
            )
            written = from_us(now).isoformat()
            self._record(
                cur,
                now,
                [
                    Change(
                        kind="prices",
                        node_id=ALL_NODES,
                        msg_id=f"prices:{table.version}",
                        body={"prices": {**summary, "written_at": written}},
                    )
                ],
            )
            return table

        return self._write((), clock, work)

    def holds_since(self, since_us: int) -> int:
        """Holds placed at or after ``since_us`` (µs), whatever became of them since."""

        def work(cur: Any) -> int:
            row = self._run(
                cur, "SELECT count(*) FROM stock_holds WHERE created_at >= ?", (since_us,)
            ).fetchone()
            return int(row[0])

        return self._read(work)
