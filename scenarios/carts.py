"""Deterministic synthetic checkout carts against a snapshot.

Cart sizes follow a long-tailed mix (most carts hold one to three lines, a few more than
twenty), SKUs follow Zipf popularity, destinations are postal codes weighted by population,
and order instants follow a daily shopping curve in the destination's local time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import numpy as np
import numpy.typing as npt

from models import Cart, CartLine, Destination, PromiseRequest, Snapshot
from scenarios.geography import postal_codes

__all__ = [
    "CART_SIZE_PMF",
    "MAX_CART_LINES",
    "QUANTITY_PMF",
    "generate_carts",
    "sku_popularity",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MAX_CART_LINES = 30


def _size_pmf() -> FloatArray:
    """Probability of 1..MAX_CART_LINES lines per cart."""
    pmf = np.zeros(MAX_CART_LINES)
    pmf[0], pmf[1], pmf[2] = 0.60, 0.15, 0.09
    # The rest decays geometrically within each band so each band has the stated total.
    for lo, hi, total, ratio in ((4, 10, 0.12, 0.75), (11, 20, 0.03, 0.85), (21, 30, 0.01, 0.9)):
        shape = ratio ** np.arange(hi - lo + 1)
        pmf[lo - 1 : hi] = total * shape / shape.sum()
    return np.asarray(pmf / pmf.sum(), dtype=np.float64)


# Index i is the probability of i + 1 lines: 60 % single-line, 84 % up to three lines,
# 1 % more than twenty.
CART_SIZE_PMF = _size_pmf()
# Index i is the probability of quantity i + 1 on a line.
QUANTITY_PMF = np.array([0.85, 0.11, 0.04])
# Zipf exponent of SKU demand over popularity rank.
DEMAND_EXPONENT = 1.0
# Relative order volume per local hour 0..23: quiet nights, a lunch bump, an evening peak
# (after most stores' cutoff, so many orders roll to the next dispatch day).
_HOUR_WEIGHT = np.array(
    [
        *(0.6, 0.3, 0.2, 0.2, 0.2, 0.4, 0.8, 1.5, 2.5, 3.5, 4.0, 4.5),
        *(5.0, 5.0, 4.5, 4.5, 4.5, 5.0, 5.5, 6.0, 6.5, 6.0, 4.5, 2.0),
    ]
)
_HOUR_PMF = _HOUR_WEIGHT / _HOUR_WEIGHT.sum()
_WEEK = dt.timedelta(days=7)
# Carts are drawn in blocks of this many, each from its own stream.
_BLOCK = 256
# Candidate instants drawn per cart; one in eight falls outside the week and is discarded.
_TRIES = 8


def sku_popularity(snapshot: Snapshot) -> FloatArray:
    """Demand share of each catalog item (in ``snapshot.items`` order), summing to 1.

    A snapshot carries no sales history, so SKUs are ranked by network stock (on hand plus
    in transit, which retailers size to demand) and the ranks get Zipf weights.
    """
    position = {item.sku: k for k, item in enumerate(snapshot.items)}
    stock = np.zeros(len(position))
    for row in snapshot.inventory:
        stock[position[row.sku]] += row.on_hand + sum(lot.quantity for lot in row.in_transit)
    # Stable sort: ties keep catalog order, so the ranking is deterministic.
    order = np.argsort(-stock, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    weight = 1.0 / (rank + 1.0) ** DEMAND_EXPONENT
    share: FloatArray = weight / weight.sum()
    return share


def _draw_lines(
    sizes: IntArray, popularity: FloatArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """SKU indices of every line (cart by cart), distinct within a cart, and cart offsets."""
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    cart = np.repeat(np.arange(len(sizes)), sizes)
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]

    def draw(n: int) -> IntArray:
        """Independent draws by popularity."""
        return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)

    sku = draw(len(cart))
    # Redraw repeats of a SKU within a cart until every cart's SKUs are distinct; a cart never
    # holds more lines than the catalog has SKUs, so this ends.
    while True:
        key = cart * len(cdf) + sku
        _, first = np.unique(key, return_index=True)
        repeat = np.ones(len(key), dtype=bool)
        repeat[first] = False
        if not repeat.any():
            return sku, offsets
        sku[repeat] = draw(int(repeat.sum()))


def _order_instants(
    zones: list[str], start: dt.datetime, rng: np.random.Generator
) -> list[dt.datetime]:
    """One order instant per cart within a week of ``start``, on the local shopping curve."""
    n = len(zones)
    days = rng.integers(0, 8, size=(n, _TRIES))
    hours = rng.choice(24, size=(n, _TRIES), p=_HOUR_PMF)
    seconds = rng.integers(0, 3600, size=(n, _TRIES))
    fallback = rng.random(n)
    end = start + _WEEK
    instants: list[dt.datetime] = []
    for i, name in enumerate(zones):
        zone = zoneinfo.ZoneInfo(name)
        local_start = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        chosen = None
        for day, hour, second in zip(days[i], hours[i], seconds[i], strict=True):
            local = local_start + dt.timedelta(days=int(day))
            candidate = local.replace(hour=int(hour)) + dt.timedelta(seconds=int(second))
            instant = candidate.astimezone(dt.UTC)
            if start <= instant < end:
                chosen = instant
                break
        # Vanishingly rare: every candidate missed the week, so take a uniform instant.
        instants.append(chosen if chosen is not None else (start + fallback[i] * _WEEK))
    return [instant.astimezone(dt.UTC) for instant in instants]


@dataclasses.dataclass(frozen=True, slots=True)
class _Block:
    """Random draws for one block of carts; lines of cart c are offsets[c]:offsets[c + 1]."""

    offsets: list[int]
    sku: list[int]
    quantity: list[int]
    unknown: list[bool]
    destination: list[int]
    requested_at: list[dt.datetime]


def _draw_block(
    rng: np.random.Generator,
    size_pmf: FloatArray,
    popularity: FloatArray,
    unknown_sku_rate: float,
    start: dt.datetime,
) -> _Block:
    """Draw a whole block of carts (sizes, SKUs, quantities, destinations, instants)."""
    sizes = rng.choice(len(size_pmf), size=_BLOCK, p=size_pmf).astype(np.int64) + 1
    sku, offsets = _draw_lines(sizes, popularity, rng)
    quantity = rng.choice(len(QUANTITY_PMF), size=len(sku), p=QUANTITY_PMF) + 1
    # Drawn whatever the rate, so changing the rate changes nothing else.
    unknown = rng.random(len(sku)) < unknown_sku_rate
    postal = postal_codes()
    destination = rng.choice(len(postal.codes), size=_BLOCK, p=postal.weight)
    zones = [postal.time_zones[d] for d in destination.tolist()]
    return _Block(
        offsets=offsets.tolist(),
        sku=sku.tolist(),
        quantity=quantity.tolist(),
        unknown=unknown.tolist(),
        destination=destination.tolist(),
        requested_at=_order_instants(zones, start.astimezone(dt.UTC), rng),
    )


def _unknown_sku(index: int, known: set[str]) -> str:
    """A SKU id that is not in the catalog, stable for a catalog index."""
    name = f"UNKNOWN-{index + 1:06d}"
    while name in known:
        name += "X"
    return name


def generate_carts(
    snapshot: Snapshot,
    *,
    count: int,
    seed: int = 11,
    channel: str = "web",
    start: dt.datetime | None = None,
    unknown_sku_rate: float = 0.0,
    lines: int | None = None,
) -> list[PromiseRequest]:
    """``count`` promise requests for ``snapshot``'s catalog, identical for identical arguments.

    ``lines`` fixes every cart's size (benchmarks by cart size); by default sizes follow the
    realistic mix.

    The first n carts do not depend on ``count``, so a longer run extends a shorter one.

    ``unknown_sku_rate`` is the share of lines naming a SKU outside the catalog, to exercise
    unknown-SKU handling; by default every line names a catalog SKU.
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if not 0.0 <= unknown_sku_rate <= 1.0:
        raise ValueError(f"unknown_sku_rate must be within [0, 1], got {unknown_sku_rate}")
    if snapshot.policy(channel) is None:
        channels = ", ".join(policy.channel for policy in snapshot.policies)
        raise ValueError(f"snapshot has no policy for channel {channel!r} (has {channels})")
    if not snapshot.items:
        raise ValueError("snapshot has no catalog items to put in carts")
    start = snapshot.as_of if start is None else start
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    items = snapshot.items
    max_lines = min(MAX_CART_LINES, len(items))
    size_pmf = CART_SIZE_PMF[:max_lines] / CART_SIZE_PMF[:max_lines].sum()
    if lines is not None:
        if not 1 <= lines <= max_lines:
            raise ValueError(f"lines must be within [1, {max_lines}], got {lines}")
        size_pmf = np.eye(max_lines)[lines - 1]
    popularity = sku_popularity(snapshot)
    postal = postal_codes()
    known = {item.sku for item in items}
    requests: list[PromiseRequest] = []
    for block in range(-(-count // _BLOCK)):
        # Each block of carts has its own stream and is always drawn whole, so the first n
        # carts are the same whatever count is asked for.
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))
        drawn = _draw_block(rng, size_pmf, popularity, unknown_sku_rate, start)
        for c in range(min(_BLOCK, count - block * _BLOCK)):
            cart_lines = []
            for n, j in enumerate(range(int(drawn.offsets[c]), int(drawn.offsets[c + 1]))):
                item = items[drawn.sku[j]]
                cart_lines.append(
                    CartLine(
                        line_id=f"l{n + 1}",
                        # An unknown SKU keeps the catalog price so revenue figures stay sane.
                        sku=_unknown_sku(drawn.sku[j], known) if drawn.unknown[j] else item.sku,
                        quantity=drawn.quantity[j],
                        unit_price=item.list_price,
                    )
                )
            cart_id = f"cart-s{seed}-{block * _BLOCK + c + 1:06d}"
            requests.append(
                PromiseRequest(
                    cart=Cart(cart_id=cart_id, channel=channel, lines=tuple(cart_lines)),
                    destination=Destination(postal_code=postal.codes[drawn.destination[c]]),
                    requested_at=drawn.requested_at[c],
                )
            )
    return requests
