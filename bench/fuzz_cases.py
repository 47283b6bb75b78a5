"""The fuzz's positive cases: what the served network holds, and shaping cases to reach it.

Schema-valid requests rarely name anything that exists, so positive cases are shaped where no
schema can know better (see :mod:`bench.fuzz`); ids harvested from answers feed later cases.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar, cast

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

import scenarios
from models import EARLIEST_DATE, LATEST_DATE, Snapshot

__all__ = [
    "PROMISE",
    "SHAPERS",
    "SNAPSHOT_PUT",
    "VALIDATE",
    "Network",
    "Operation",
    "ServiceLimits",
    "cases_of",
]

T = TypeVar("T")
Operation: TypeAlias = "schemathesis.APIOperation[Any, Any, Any, Any]"
PROMISE = "POST /v1/promise"
VALIDATE = "POST /v1/promise/validate"
SNAPSHOT_PUT = "PUT /v1/snapshot"
# One positive snapshot case in this many re-sends the demo network (a real swap).
SNAPSHOT_RESEND_EVERY = 25
# Of positive cases with an id in their path, this share names an id that exists.
KNOWN_ID_SHARE = 0.8
MAX_BATCH = 50  # events of a shaped batch
MAX_HELD_QUANTITY = 5  # units a line of a promise with reserve: true asks for at most
DEEP_STOCK = 15  # units beyond safety stock of a position that holds and events may touch


@dataclasses.dataclass(frozen=True)
class ServiceLimits:
    """What the server's settings refuse that no schema can say (its defaults unless set)."""

    max_time_budget_ms: int = 2_000
    max_cart_lines: int = 100
    max_hold_ttl_s: int = 3600


# --- what the served network holds, and ids seen during the run -----------------------------


@dataclasses.dataclass
class Network:
    """Names a positive case may use so that it reaches the service's logic, and seen ids."""

    skus: list[str]
    positions: list[tuple[str, str]]  # (node_id, sku) with units to spare
    channels: list[str]
    postal_codes: list[str]
    snapshot: Snapshot
    limits: ServiceLimits = dataclasses.field(default_factory=ServiceLimits)
    promise_ids: list[str] = dataclasses.field(default_factory=list)
    reservation_ids: list[str] = dataclasses.field(default_factory=list)
    event_ids: list[str] = dataclasses.field(default_factory=list)
    key_ids: list[str] = dataclasses.field(default_factory=list)
    # Picks among real names: hypothesis' own choices favour the first few items (so a run
    # would hold and promise the same few SKUs over and over); seeded, so a run repeats.
    rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(0))
    _serial: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    _snapshot_cases: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    @classmethod
    def of(cls, snapshot: Snapshot, limits: ServiceLimits) -> Network:
        """The names of ``snapshot`` (stocked SKUs, holdable positions, channels, places)."""
        rows = [row for row in snapshot.positions() if row.on_hand > row.reserved]
        # Holds of a unit or two, and events of a few, on these leave their stock promisable.
        deep = [row for row in rows if row.on_hand - row.reserved - row.safety_stock >= DEEP_STOCK]
        return cls(
            skus=sorted({row.sku for row in rows}),
            positions=sorted({(row.node_id, row.sku) for row in deep}),
            channels=[policy.channel for policy in snapshot.policies],
            postal_codes=list(scenarios.postal_codes().codes[:500]),
            snapshot=snapshot,
            limits=limits,
        )

    def pick(self, items: Sequence[T]) -> T:
        """One of ``items``, uniformly."""
        return self.rng.choice(items)

    def unique(self, prefix: str) -> str:
        """A name never used before in this run (idempotency keys, event ids)."""
        return f"{prefix}-{next(self._serial)}"

    def next_snapshot_case(self) -> int:
        """How many positive snapshot cases were shaped before this one."""
        return next(self._snapshot_cases)

    def resent_snapshot(self) -> dict[str, Any]:
        """The served network as a snapshot body, under a version of its own."""
        version = f"{self.snapshot.version}-resent-{next(self._serial)}"
        return cast(
            "dict[str, Any]",
            json.loads(self.snapshot.model_copy(update={"version": version}).model_dump_json()),
        )

    def harvest(self, operation: str, status: int, body: Any) -> None:
        """Remember the ids a successful answer made, for later path parameters."""
        if not 200 <= status < 300 or not isinstance(body, dict):
            return
        if operation == PROMISE:
            if _holdable(body):
                self.promise_ids.append(str(body["promise_id"]))
            hold = (body.get("reservation") or {}).get("reservation")
            if hold:
                self.reservation_ids.append(str(hold["reservation_id"]))
        elif operation == "POST /v1/reservations":
            self.reservation_ids.append(str(body["reservation_id"]))
        elif operation == "POST /v1/inventory/events":
            self.event_ids.extend(
                str(result["event_id"])
                for result in body["results"]
                if result["outcome"] != "rejected"
            )
        elif operation == "POST /v1/keys":
            self.key_ids.append(str(body["key_id"]))


def _holdable(answer: dict[str, Any]) -> bool:
    """Whether a promise answer's recommended option ships something (it can be held)."""
    recommended = answer.get("recommended")
    return any(
        option["service_level"] == recommended and option["shipments"]
        for option in answer.get("options", ())
    )


def _known(draw: st.DrawFn) -> bool:
    """Whether this case should name something that exists (``KNOWN_ID_SHARE`` of them)."""
    return draw(st.integers(0, 99)) < KNOWN_ID_SHARE * 100


def _moments() -> st.SearchStrategy[str]:
    """Instants within the range every date of the service must fall in."""
    return st.datetimes(
        min_value=dt.datetime.combine(EARLIEST_DATE, dt.time()),
        max_value=dt.datetime.combine(LATEST_DATE, dt.time(12)),
        timezones=st.just(dt.UTC),
    ).map(lambda moment: moment.isoformat())


def _six_decimals(value: Any) -> Any:
    """``value`` with every float rounded to the six decimal places the service accepts.

    JSON Schema cannot say "at most six decimal places" of a float (``multipleOf: 1e-6``
    fails on binary floats in validators), so the document does not: the fuzz rounds.
    """
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _six_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_six_decimals(item) for item in value]
    return value


# --- positive cases shaped to reach the service's logic -------------------------------------

Shaper = Callable[[st.DrawFn, schemathesis.Case[Any], Network], None]


def _shape_promise(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """A generated promise body on the network's SKUs, channels and destinations."""
    # The schema makes the body a JSON object with a cart of lines; Any spares the casts.
    body: dict[str, Any] = dict(cast("dict[str, Any]", case.body))
    body.pop("snapshot", None)  # inline snapshots are off by default
    cart: dict[str, Any] = dict(body["cart"], channel=draw(st.sampled_from(network.channels)))
    # The schema allows 500 lines; the service's max_cart_lines setting fewer.
    lines = cart["lines"][: network.limits.max_cart_lines]
    cart["lines"] = [
        {**line, "line_id": f"l{i}", "sku": network.pick(network.skus)}
        for i, line in enumerate(lines)
    ]
    if body.get("reserve"):
        # A hold is one shopper's checkout: thousands of units a line would spend the fuzzing
        # key's held-unit limit in a few cases, and every later hold would be refused for it.
        cart["lines"] = [
            {**line, "quantity": min(line["quantity"], MAX_HELD_QUANTITY)} for line in cart["lines"]
        ]
    body["cart"] = cart
    if draw(st.booleans()):
        body["destination"] = {"postal_code": network.pick(network.postal_codes), "country": "US"}
    else:
        # Inside the contiguous US, where the postal-code dataset resolves every point.
        body["destination"] = {
            "lat": draw(st.floats(30.0, 47.0)),
            "lon": draw(st.floats(-120.0, -75.0)),
        }
    if "requested_at" in body:
        # JSON Schema cannot bound a date-time (the range is in the field's description).
        body["requested_at"] = draw(_moments())
    if body.get("time_budget_ms") is not None:
        # The schema allows a minute; the service's max_time_budget_ms setting less.
        body["time_budget_ms"] = draw(st.integers(1, network.limits.max_time_budget_ms))
    case.body = _six_decimals(body)
    if case.headers and "Idempotency-Key" in case.headers:
        # A reused key with another body is a 422 by design, not what this case is about.
        case.headers["Idempotency-Key"] = network.unique("promise")


def _shape_availability(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """Availability of real SKUs for a real channel, near a real place or anywhere."""
    query: dict[str, Any] = {
        "sku": [network.pick(network.skus) for _ in range(draw(st.integers(1, 6)))],
        "channel": draw(st.sampled_from(network.channels)),
    }
    if draw(st.booleans()):
        query["postal_code"] = network.pick(network.postal_codes)
        query["country"] = "US"
    case.query = query


def _shape_position(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """The live position of a real node and SKU, for a real channel."""
    node_id, sku = network.pick(network.positions)
    case.query = {
        "node_id": node_id,
        "sku": sku,
        "channel": draw(st.sampled_from(network.channels)),
    }


def _coherent_event(draw: st.DrawFn, event: dict[str, Any], network: Network) -> dict[str, Any]:
    """``event`` made to fit its type (rules between fields no JSON Schema states)."""
    event = dict(event)
    kind = event["type"]
    quantity = int(event["quantity"])
    if kind == "count":
        quantity = abs(quantity)
    elif kind == "adjustment":
        quantity = quantity or 1
    else:
        quantity = abs(quantity) or 1
    if _known(draw):
        # A real position, by a little: the run must not drain the network it promises on.
        event["node_id"], event["sku"] = network.pick(network.positions)
        quantity = max(-5, min(quantity, 5)) or 1
        if kind != "adjustment":
            quantity = abs(quantity)
    event["quantity"] = quantity
    if kind == "in_transit":
        event["eta"] = draw(st.dates(EARLIEST_DATE, LATEST_DATE)).isoformat()
    else:
        event.pop("eta", None)
    if kind not in ("sale", "shipment"):
        event.pop("reservation_id", None)
    if kind not in ("receipt", "transfer_in"):
        event.pop("lot_id", None)
    event["occurred_at"] = draw(_moments())
    # Unique ids: a batch repeating one is answered, but says only "duplicate".
    event["event_id"] = network.unique("fuzz-event")
    return event


def _shape_events(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """A batch of events each fitting its type, some on real positions."""
    body: dict[str, Any] = dict(cast("dict[str, Any]", case.body))
    # A long generated batch says no more than a short one, and holds up the run.
    events = body["events"][:MAX_BATCH]
    body["events"] = [_coherent_event(draw, event, network) for event in events]
    case.body = body


def _shape_reservation(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """A hold of a promise option seen earlier, or of a few units of real positions."""
    # Hypothesis wants the same draws whatever the run's state: every choice is drawn first.
    of_promise = draw(st.booleans())
    index = draw(st.integers(0, 2**16))
    lines = [network.pick(network.positions) for _ in range(draw(st.integers(1, 3)))]
    quantities = [draw(st.integers(1, 2)) for _ in lines]
    channel = draw(st.sampled_from(network.channels))
    ttl_s = draw(st.none() | st.integers(1, network.limits.max_hold_ttl_s))
    body: dict[str, Any] = {} if ttl_s is None else {"ttl_s": ttl_s}
    if of_promise and network.promise_ids:
        # Each answer once: its allocation is then held, a second hold of it would be short.
        body["promise_id"] = network.promise_ids.pop(index % len(network.promise_ids))
    else:
        held = dict(zip(lines, quantities, strict=True))
        body["lines"] = [
            {"node_id": node_id, "sku": sku, "quantity": quantity}
            for (node_id, sku), quantity in held.items()
        ]
        body["channel"] = channel
    case.body = body
    # A reused key with another body is a 422 by design, not what this case is about.
    case.headers["Idempotency-Key"] = network.unique("hold")


def _shape_price_page(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """A page of the price table filtered to a real SKU or node, from its first row."""
    node_id, sku = network.pick(network.positions)
    query: dict[str, Any] = dict(case.query or {})
    # A generated cursor is never one the service handed out: a 422 by design.
    query.pop("cursor", None)
    for name, value in (("sku", sku), ("node_id", node_id)):
        if name in query or draw(st.booleans()):
            query[name] = value
    case.query = query


def _shape_price_upload(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """A table of real (node, SKU) pairs, each once, with the generated prices."""
    body: dict[str, Any] = dict(cast("dict[str, Any]", case.body))
    rows = body.get("rows", [])[:MAX_BATCH]
    pairs = list(dict.fromkeys(network.pick(network.positions) for _ in rows))
    body["rows"] = [
        {**row, "node_id": node_id, "sku": sku}
        for row, (node_id, sku) in zip(rows, pairs, strict=False)
    ]
    # A generated version to replace is rarely the current one: a 409 by design.
    body.pop("replaces", None)
    if body.get("computed_at") is not None:
        # JSON Schema cannot bound a date-time (the range is in the field's description).
        body["computed_at"] = draw(_moments())
    case.body = body


def _path_id(name: str, pool: Callable[[Network], list[str]]) -> Shaper:
    """A shaper naming an existing id in path parameter ``name`` for most cases."""

    def shape(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
        known = _known(draw)
        index = draw(st.integers(0, 2**16))  # drawn whatever the pool holds (see above)
        ids = pool(network)
        if known and ids:
            case.path_parameters = {**(case.path_parameters or {}), name: ids[index % len(ids)]}

    return shape


def _shape_snapshot(draw: st.DrawFn, case: schemathesis.Case[Any], network: Network) -> None:
    """Every ``SNAPSHOT_RESEND_EVERY``-th case re-sends the served network under a new version."""
    del draw  # a counter, not a draw: the first case and a fixed share re-send
    if network.next_snapshot_case() % SNAPSHOT_RESEND_EVERY == 0:
        case.body = network.resent_snapshot()


SHAPERS: dict[str, Shaper] = {
    PROMISE: _shape_promise,
    VALIDATE: _shape_promise,
    "GET /v1/availability": _shape_availability,
    "GET /v1/inventory/positions": _shape_position,
    "POST /v1/inventory/events": _shape_events,
    "GET /v1/inventory/events/{event_id}": _path_id("event_id", lambda n: n.event_ids),
    "POST /v1/reservations": _shape_reservation,
    "GET /v1/reservations/{reservation_id}": _path_id(
        "reservation_id", lambda n: n.reservation_ids
    ),
    "POST /v1/reservations/{reservation_id}/confirm": _path_id(
        "reservation_id", lambda n: n.reservation_ids
    ),
    "POST /v1/reservations/{reservation_id}/release": _path_id(
        "reservation_id", lambda n: n.reservation_ids
    ),
    # Only keys made during the run: the fuzzing key itself is never in this pool.
    "POST /v1/keys/{key_id}/revoke": _path_id("key_id", lambda n: n.key_ids),
    SNAPSHOT_PUT: _shape_snapshot,
    "GET /v1/prices": _shape_price_page,
    "PUT /v1/prices": _shape_price_upload,
}


def cases_of(
    operation: Operation, mode: GenerationMode, network: Network
) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """The operation's generated cases; positive ones shaped by its ``SHAPERS`` entry."""
    generated = operation.as_strategy(generation_mode=mode)
    shaper = SHAPERS.get(operation.label)
    if mode is not GenerationMode.POSITIVE or shaper is None:
        return generated

    @st.composite
    def shaped(draw: st.DrawFn) -> schemathesis.Case[Any]:
        case: schemathesis.Case[Any] = draw(generated)
        shaper(draw, case, network)
        return case

    return shaped()
