"""The opportunity cost of stock: cents per unit taken from a (node, SKU), versioned.

A price says what a unit at a node is worth to the orders expected after this one (the dual
of its stock constraint in the pricing LP, solver/pricing.py). It lives beside live stock, not
in the snapshot, so a re-pricing never swaps the snapshot; it is one more objective term
(``ObjectiveWeights.opportunity`` × price per unit), never cost of goods or margin.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = ["MAX_PRICE_CENTS", "NO_PRICES", "StockPrices"]

# A price above the dearest possible fulfilment of a unit means nothing more; the cap keeps
# every objective far inside the integers the solver represents exactly.
MAX_PRICE_CENTS = 10_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class StockPrices:
    """Opportunity cost per unit, by SKU then node id; absent pairs cost nothing."""

    version: int
    by_sku: Mapping[str, Mapping[str, int]]
    computed_at: dt.datetime | None = None
    note: str = ""
    # Every solve asks whether a table is in force; counting thousands of SKUs' pairs each
    # time cost half a millisecond a request.
    size: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Count the priced pairs once."""
        object.__setattr__(self, "size", sum(len(nodes) for nodes in self.by_sku.values()))

    @classmethod
    def of(
        cls,
        rows: Iterable[tuple[str, str, int]],
        *,
        version: int = 0,
        computed_at: dt.datetime | None = None,
        note: str = "",
    ) -> StockPrices:
        """Prices from ``(node_id, sku, cents)`` rows; zero prices are dropped."""
        table: dict[str, dict[str, int]] = {}
        for node_id, sku, cents in rows:
            if not 0 <= cents <= MAX_PRICE_CENTS:
                raise ValueError(f"price of ({node_id}, {sku}) must be 0..{MAX_PRICE_CENTS} cents")
            if cents:
                table.setdefault(sku, {})[node_id] = int(cents)
        frozen = {sku: MappingProxyType(nodes) for sku, nodes in table.items()}
        return cls(version, MappingProxyType(frozen), computed_at, note)

    def price(self, node_id: str, sku: str) -> int:
        """Cents per unit of ``sku`` taken at ``node_id`` (0 when unpriced)."""
        nodes = self.by_sku.get(sku)
        return 0 if nodes is None else nodes.get(node_id, 0)

    def rows(self) -> list[tuple[str, str, int]]:
        """Every priced pair as ``(node_id, sku, cents)``, sorted."""
        return sorted(
            (node_id, sku, cents)
            for sku, nodes in self.by_sku.items()
            for node_id, cents in nodes.items()
        )

    def __len__(self) -> int:
        """Number of priced (node, SKU) pairs."""
        return self.size


NO_PRICES = StockPrices(0, MappingProxyType({}))
