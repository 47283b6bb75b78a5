"""Request and answer bodies of ``GET /v1/prices`` and ``PUT /v1/prices``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field

from models import MAX_PRICE_CENTS, Frozen, Instant, IntegerOnly, Many
from promise.stock._price_queries import PriceRow, PriceTable
from promise.stock.backend import from_us
from promise.stock.schemas import Identifier

__all__ = [
    "MAX_UPLOAD_ROWS",
    "PriceEntry",
    "PricePage",
    "PriceTableView",
    "PriceUpload",
    "table_view",
]

# A table larger than this is the pricing job's to write (``promise price``), not a body's;
# the route's byte and memory limits usually refuse a body before it has this many rows.
MAX_UPLOAD_ROWS = 100_000
MAX_NOTE_CHARS = 500
Cents = Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS), IntegerOnly]


class PriceEntry(Frozen):
    """The opportunity cost of one unit of a SKU taken from a node."""

    node_id: Identifier
    sku: Identifier
    cents: Cents = Field(description=f"Cents per unit, 0 to {MAX_PRICE_CENTS}.")


class PriceUpload(Frozen):
    """Body of ``PUT /v1/prices``: a whole table, replacing the current one."""

    rows: Annotated[tuple[PriceEntry, ...], Many(MAX_UPLOAD_ROWS)] = Field(
        description="Every priced (node, SKU) of the live network, each once; pairs left out "
        "(and zero prices) cost nothing."
    )
    note: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = ""
    computed_at: Instant | None = Field(
        default=None, description="When the prices were worked out (default: not said)."
    )
    replaces: Annotated[int, Field(ge=0, le=2**62), IntegerOnly] | None = Field(
        default=None,
        description="Write only if this version is current (409 prices-moved otherwise): two "
        "writers working from one version cannot both replace it.",
    )


class PriceTableView(Frozen):
    """The current price table: its version and where it came from (version 0: none yet)."""

    version: int = Field(description="Handed out by the authority; grows with every table.")
    written_at: dt.datetime | None = None
    computed_at: dt.datetime | None = None
    note: str = ""
    origin: str | None = Field(default=None, description="upload, cli or job.")
    principal: str | None = Field(default=None, description="Who wrote it (audited).")
    priced: int = Field(default=0, description="(node, SKU) pairs with a price above zero.")
    snapshot_generation: int | None = Field(
        default=None, description="The live network generation the table was made for."
    )


class PricePage(PriceTableView):
    """The current table and a page of its rows, in (sku, node_id) order."""

    rows: tuple[PriceEntry, ...] = ()
    next_cursor: str | None = Field(
        default=None, description="Pass as cursor for the next page; None on the last one."
    )


def table_view(table: PriceTable | None) -> dict[str, object]:
    """The fields of :class:`PriceTableView` of a stored version (no table: version 0)."""
    if table is None:
        return {"version": 0}
    return {
        "version": table.version,
        "written_at": from_us(table.written_at),
        "computed_at": None if table.computed_at is None else from_us(table.computed_at),
        "note": table.note,
        "origin": table.origin,
        "principal": table.principal,
        "priced": table.priced,
        "snapshot_generation": table.snapshot_generation,
    }


def entries(rows: list[PriceRow]) -> tuple[PriceEntry, ...]:
    """Stored rows as answer entries."""
    return tuple(PriceEntry(node_id=node, sku=sku, cents=cents) for node, sku, cents in rows)
