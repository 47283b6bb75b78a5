"""Days of orders on depleting stock: a Jasin–Sinha-style network and the scarce demo network.

- ``jasin_sinha_day``: 5 fulfilment centres, 10 demand regions, 20 items of 1 kg, one ground
  service costing $8.76 per box, $0.42 per unit picked and $0.000541 per unit-mile (charged
  per kg at each zone's mid distance: 1 kg per unit). Weights are money only (no split,
  lateness or protection penalty). Each item's stock is about its expected day demand,
  spread over the centres at random, unlike where its demand is.
- ``scarce_demo_day``: the embedded demo network (200 nodes), its 40 best-selling SKUs with
  DC stock cut to half the day's expected demand and store stock on hand to 30 % of its own
  (the least at which a 300-order day can be filled: at a fifth, a quarter of its units
  cannot be), stores' lots in transit arrived (on hand) unless asked to keep them; carts
  to the 30 largest US cities, answered at the ground level with the web channel's own
  weights (split and lateness penalties included).

Each day has a forecast: the expected units by region × SKU, estimated from 20,000 orders
drawn from the same distribution with another seed (what a retailer's history gives, not the
day's own orders).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from models import (
    CarrierService,
    Cart,
    CartLine,
    CatalogItem,
    ChannelPolicy,
    Destination,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    ObjectiveWeights,
    PromiseRequest,
    ServiceLevel,
    Snapshot,
    ZoneRate,
)
from scenarios.carts import sku_popularity
from scenarios.day import Day
from scenarios.geography import us_cities
from scenarios.network import DEFAULT_AS_OF, demo_snapshot
from solver.basket_pricing import BasketForecast
from solver.pricing import Forecast

__all__ = ["jasin_sinha_day", "scarce_demo_day"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# (name, lat, lon, time zone)
_CENTRES = (
    ("FC-RENO", 39.5296, -119.8138, "America/Los_Angeles"),
    ("FC-DALLAS", 32.7767, -96.7970, "America/Chicago"),
    ("FC-ATLANTA", 33.7490, -84.3880, "America/New_York"),
    ("FC-COLUMBUS", 39.9612, -82.9988, "America/New_York"),
    ("FC-ALLENTOWN", 40.6023, -75.4714, "America/New_York"),
)
# (name, lat, lon, demand share)
_REGIONS = (
    ("seattle", 47.6062, -122.3321, 0.06),
    ("los-angeles", 34.0522, -118.2437, 0.16),
    ("phoenix", 33.4484, -112.0740, 0.06),
    ("denver", 39.7392, -104.9903, 0.05),
    ("minneapolis", 44.9778, -93.2650, 0.06),
    ("houston", 29.7604, -95.3698, 0.10),
    ("chicago", 41.8781, -87.6298, 0.12),
    ("miami", 25.7617, -80.1918, 0.09),
    ("new-york", 40.7128, -74.0060, 0.20),
    ("boston", 42.3601, -71.0589, 0.10),
)
# Zone mid distances in miles (zones 1-8 of solver/geo.py) for the per-unit-mile charge.
_ZONE_MILES = (25, 100, 225, 450, 750, 1150, 1600, 2200)
_BOX_CENTS = 876
_UNIT_CENTS = 42
_UNIT_MILE_CENTS = 0.0541
# Lines per order: one to three distinct items.
_LINES_PMF = np.array([0.5, 0.3, 0.2])
_FORECAST_SAMPLE = 20_000
_CHANNEL = "web"
# 08:00 to 20:00 Eastern on the demo network's as-of date: one trading day.
_DAY_START = DEFAULT_AS_OF.replace(hour=13, minute=0)
_DAY_SECONDS = 12 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class _Demand:
    """Where orders come from and what they hold."""

    lat: FloatArray  # per region
    lon: FloatArray
    share: FloatArray  # per region, sums to 1
    skus: tuple[str, ...]
    popularity: FloatArray  # per SKU, sums to 1
    prices: IntArray  # per SKU, cents
    jitter_deg: float

    def orders(
        self, count: int, rng: np.random.Generator
    ) -> list[tuple[int, float, float, list[int]]]:
        """``count`` orders: (region, lat, lon, SKU positions), distinct SKUs per order."""
        out = []
        regions = rng.choice(self.share.size, size=count, p=self.share)
        sizes = rng.choice(_LINES_PMF.size, size=count, p=_LINES_PMF) + 1
        for region, size in zip(regions.tolist(), sizes.tolist(), strict=True):
            skus = rng.choice(len(self.skus), size=size, replace=False, p=self.popularity)
            lat = float(self.lat[region] + rng.uniform(-self.jitter_deg, self.jitter_deg))
            lon = float(self.lon[region] + rng.uniform(-self.jitter_deg, self.jitter_deg))
            out.append((region, lat, lon, sorted(skus.tolist())))
        return out

    def forecast(self, count: int, seed: int) -> tuple[Forecast, BasketForecast]:
        """Expected units and orders of a day of ``count`` orders, from a sample of another seed."""
        rng = np.random.default_rng([seed, 991])
        units = np.zeros((self.share.size, len(self.skus)))
        baskets: dict[tuple[int, tuple[int, ...]], int] = {}
        for region, _, _, skus in self.orders(_FORECAST_SAMPLE, rng):
            units[region, skus] += 1.0
            key = (region, tuple(skus))
            baskets[key] = baskets.get(key, 0) + 1
        scale = count / _FORECAST_SAMPLE
        keys = sorted(baskets)
        return Forecast(self.lat, self.lon, self.skus, units * scale), BasketForecast(
            lat=self.lat,
            lon=self.lon,
            skus=self.skus,
            region=np.array([region for region, _ in keys], dtype=np.int64),
            items=tuple(items for _, items in keys),
            orders=np.array([baskets[key] * scale for key in keys]),
        )


def _requests(
    demand: _Demand, count: int, rng: np.random.Generator, level: ServiceLevel
) -> tuple[PromiseRequest, ...]:
    """The day's orders in arrival order."""
    instants = np.sort(rng.uniform(0, _DAY_SECONDS, size=count))
    out = []
    for k, ((_, lat, lon, skus), second) in enumerate(
        zip(demand.orders(count, rng), instants.tolist(), strict=True)
    ):
        lines = tuple(
            CartLine(
                line_id=f"l{n}",
                sku=demand.skus[s],
                quantity=1,
                unit_price=int(demand.prices[s]),
            )
            for n, s in enumerate(skus, start=1)
        )
        out.append(
            PromiseRequest(
                cart=Cart(cart_id=f"order-{k:05d}", channel=_CHANNEL, lines=lines),
                destination=Destination(lat=lat, lon=lon),
                service_levels=(level,),
                allow_partial=True,
                requested_at=_DAY_START + dt.timedelta(seconds=second),
            )
        )
    return tuple(out)


def _spread(total: IntArray, nodes: int, rng: np.random.Generator) -> IntArray:
    """Each SKU's ``total`` units spread over ``nodes`` by random shares (nodes × SKUs)."""
    shares = rng.dirichlet(np.ones(nodes), size=total.size).T  # nodes × SKUs
    units = np.floor(shares * total[None, :]).astype(np.int64)
    units[0] += total - units.sum(axis=0)  # rounding remainder to the first node
    return units


def jasin_sinha_day(seed: int, orders: int = 1000) -> Day:
    """A day of ``orders`` on the Jasin–Sinha-style network (module docstring)."""
    rng = np.random.default_rng([seed, 17])
    skus = tuple(f"JS-{k:02d}" for k in range(20))
    popularity = 1.0 / np.arange(1, 21) ** 0.8
    demand = _Demand(
        lat=np.array([r[1] for r in _REGIONS]),
        lon=np.array([r[2] for r in _REGIONS]),
        share=np.array([r[3] for r in _REGIONS]) / sum(r[3] for r in _REGIONS),
        skus=skus,
        popularity=popularity / popularity.sum(),
        prices=rng.integers(1500, 6000, size=20),
        jitter_deg=0.4,
    )
    forecast, baskets = demand.forecast(orders, seed)
    expected = forecast.units.sum(axis=0)
    total = np.ceil(expected * rng.uniform(1.0, 1.15, size=expected.size)).astype(np.int64)
    stock = _spread(total, len(_CENTRES), rng)
    nodes = tuple(
        Node(
            node_id=name,
            kind=NodeKind.DC,
            location=Location(lat=lat, lon=lon),
            time_zone=zone,
            cutoff=dt.time(23, 59),
            operating_weekdays=(0, 1, 2, 3, 4, 5, 6),
            handling_cost=0,
            pick_cost=_UNIT_CENTS,
            pick_seconds=0,
        )
        for name, lat, lon, zone in _CENTRES
    )
    ground = CarrierService(
        service_id="ground",
        carrier="parcel",
        service_level=ServiceLevel.GROUND,
        pickup_weekdays=(0, 1, 2, 3, 4, 5, 6),
        delivery_weekdays=(0, 1, 2, 3, 4, 5, 6),
        transit_days=(1, 2, 2, 3, 4, 5, 5, 6),
        rates=tuple(
            ZoneRate(base=_BOX_CENTS, per_kg=round(_UNIT_MILE_CENTS * miles))
            for miles in _ZONE_MILES
        ),
    )
    inventory = tuple(
        InventoryPosition(node_id=node.node_id, sku=sku, on_hand=int(stock[n, k]), unit_cost=1000)
        for n, node in enumerate(nodes)
        for k, sku in enumerate(skus)
        if stock[n, k] > 0
    )
    money = ObjectiveWeights(split_penalty=0, lateness_per_day=0, protection_per_unit=0)
    snapshot = Snapshot(
        version=f"jasin-sinha-s{seed}",
        as_of=_DAY_START,
        nodes=nodes,
        services=(ground,),
        items=tuple(CatalogItem(sku=sku, weight_g=1000, list_price=3000) for sku in skus),
        inventory=inventory,
        policies=(ChannelPolicy(channel=_CHANNEL, max_shipments=3, weights=money),),
    )
    return Day(
        name=f"jasin-sinha-s{seed}",
        snapshot=snapshot,
        orders=_requests(demand, orders, rng, ServiceLevel.GROUND),
        level=ServiceLevel.GROUND,
        forecast=forecast,
        baskets=baskets,
    )


def scarce_demo_day(
    seed: int,
    orders: int = 1000,
    *,
    dc_share: float = 0.5,
    store_share: float = 0.3,
    in_transit: bool = False,
) -> Day:
    """A day of ``orders`` on the demo network with DC stock at ``dc_share`` of demand.

    ``store_share`` scales every store's stock on hand of those SKUs too (rounded down).
    Stores keep their in-transit lots only with ``in_transit``; by default the lots arrived
    before the day opened and are on hand (DCs drop theirs): the scarce-DC-stock day of the
    issue, with no date richer in stock than another, so the clairvoyant plan needs only
    each node's first dispatch date and can be proven (solver/joint.py).
    """
    rng = np.random.default_rng([seed, 29])
    base = demo_snapshot()
    popularity = sku_popularity(base)
    top = np.argsort(-popularity, kind="stable")[:40]
    skus = tuple(base.items[int(k)].sku for k in top)
    cities = us_cities()
    big = np.argsort(-cities.population, kind="stable")[:30]
    share = cities.population[big].astype(np.float64)
    weights = popularity[top] / popularity[top].sum()
    demand = _Demand(
        lat=cities.lat[big],
        lon=cities.lon[big],
        share=share / share.sum(),
        skus=skus,
        popularity=weights,
        prices=np.array([base.items[int(k)].list_price for k in top], dtype=np.int64),
        jitter_deg=0.3,
    )
    forecast, baskets = demand.forecast(orders, seed)
    expected = forecast.units.sum(axis=0)
    wanted = set(skus)
    kinds = {node.node_id: node.kind for node in base.nodes}
    dc_total = dict.fromkeys(skus, 0)
    for row in base.inventory:
        if row.sku in wanted and kinds[row.node_id] is NodeKind.DC:
            dc_total[row.sku] += row.on_hand
    target = {sku: dc_share * expected[k] for k, sku in enumerate(skus)}
    scale: Callable[[InventoryPosition], InventoryPosition] = lambda row: row.model_copy(  # noqa: E731
        update={
            "on_hand": int(row.on_hand * min(1.0, target[row.sku] / max(1, dc_total[row.sku]))),
            "reserved": 0,
            "in_transit": (),
        }
    )
    inventory = tuple(
        scale(row)
        if kinds[row.node_id] is NodeKind.DC
        else row.model_copy(
            update={
                # Without lots, a store's lots arrived before the day opened.
                "on_hand": int(row.on_hand * store_share)
                + (0 if in_transit else sum(lot.quantity for lot in row.in_transit)),
                "reserved": min(row.reserved, int(row.on_hand * store_share)),
                "safety_stock": min(row.safety_stock, int(row.on_hand * store_share)),
                "in_transit": row.in_transit if in_transit else (),
            }
        )
        for row in base.inventory
        if row.sku in wanted
    )
    snapshot = base.model_copy(
        update={
            "version": f"{base.version}-scarce-s{seed}",
            "items": tuple(item for item in base.items if item.sku in wanted),
            "inventory": inventory,
        }
    )
    return Day(
        name=f"demo-scarce-s{seed}",
        snapshot=Snapshot.model_validate(snapshot.model_dump()),
        orders=_requests(demand, orders, rng, ServiceLevel.GROUND),
        level=ServiceLevel.GROUND,
        forecast=forecast,
        baskets=baskets,
    )
