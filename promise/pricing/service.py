"""The price table as the HTTP handlers call it: pages of the current table, whole uploads.

An upload is checked against the live network (every node and SKU known, each pair once)
and written as the authority's next version in one transaction, audited under the caller;
this worker charges it from its next promise on, every other worker from its next promise that
reads live stock (the version check they make anyway), or within ``prices_poll_ms``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

import anyio.to_thread

from promise.access.principal import Principal
from promise.pricing.schemas import (
    PricePage,
    PriceTableView,
    PriceUpload,
    entries,
    table_view,
)
from promise.stock._price_queries import PriceRow, PriceTable
from promise.stock.backend import to_us
from promise.stock.errors import InvalidCursorError, InvalidPriceTableError, PricesMovedError
from promise.stock.holds import StockRules
from promise.stock.service import StockService

__all__ = ["PriceService", "decode_cursor", "encode_cursor"]


def encode_cursor(version: int, sku: str, node_id: str) -> str:
    """An opaque cursor: the table version and the last row of a page."""
    raw = json.dumps([version, sku, node_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, tuple[str, str]]:
    """The version and last row a cursor names, or a 422 about the ``cursor`` parameter."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, sku, node_id = json.loads(raw)
        if not (isinstance(version, int) and isinstance(sku, str) and isinstance(node_id, str)):
            raise TypeError("cursor parts")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursorError(
            "cursor is not one this service handed out; start from the first page", ("cursor",)
        ) from exc
    return version, (sku, node_id)


def _checked_rows(rules: StockRules, upload: PriceUpload) -> list[PriceRow]:
    """The upload's rows, each naming a node and SKU of the live network, each pair once."""
    seen: dict[tuple[str, str], int] = {}
    rows: list[PriceRow] = []
    for i, row in enumerate(upload.rows):
        reason = rules.unknown(row.node_id, row.sku)
        if reason is not None:
            part = "node_id" if reason.startswith("unknown node") else "sku"
            raise InvalidPriceTableError(f"{reason} in the live network", ("rows", i, part))
        key = (row.node_id, row.sku)
        first = seen.setdefault(key, i)
        if first != i:
            raise InvalidPriceTableError(
                f"({row.node_id}, {row.sku}) is priced twice: rows {first} and {i}", ("rows", i)
            )
        rows.append((row.node_id, row.sku, row.cents))
    return rows


class PriceService:
    """Pages and uploads of the authority's price table for one worker."""

    def __init__(self, stock: StockService) -> None:
        """Read and write through ``stock``'s backend; its live copy serves the solves."""
        self._stock = stock

    async def page(
        self,
        *,
        sku: str | None = None,
        node_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> PricePage:
        """The current table's metadata and up to ``limit`` rows after ``cursor``."""
        expected: int | None = None
        after: tuple[str, str] | None = None
        if cursor is not None:
            expected, after = decode_cursor(cursor)
        # One row more than asked says whether another page follows.
        fetch = limit + 1 if limit else 0
        read = functools.partial(
            self._stock.backend.price_page, sku=sku, node_id=node_id, after=after, limit=fetch
        )
        table, rows = await anyio.to_thread.run_sync(read)
        current = 0 if table is None else table.version
        if expected is not None and expected != current:
            # A page of another version would mix two tables: start again.
            raise PricesMovedError(expected, current)
        next_cursor = None
        if limit and len(rows) > limit:
            rows = rows[:limit]
            node, last_sku, _ = rows[-1]
            next_cursor = encode_cursor(current, last_sku, node)
        fields: dict[str, Any] = table_view(table)
        return PricePage.model_validate(
            {**fields, "rows": entries(rows), "next_cursor": next_cursor}
        )

    async def upload(self, upload: PriceUpload, principal: Principal) -> PriceTableView:
        """Check a whole table against the live network and write it as the next version."""
        live = await self._stock.snapshots.sync()
        rules = self._stock.rules(live)
        backend = self._stock.backend

        def write() -> PriceTable:
            rows = _checked_rows(rules, upload)
            return backend.write_prices(
                rows,
                self._stock.clock,
                origin="upload",
                note=upload.note,
                computed_at=None if upload.computed_at is None else to_us(upload.computed_at),
                actor=principal.id,
                expect=upload.replaces,
                snapshot_generation=live.generation,
            )

        table = await anyio.to_thread.run_sync(write)
        # This worker charges it from now on; the others catch up on their next promise.
        await self._stock.sync_prices()
        return PriceTableView.model_validate(table_view(table))
