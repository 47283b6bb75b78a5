"""Schemathesis over every operation of the published document, with a credential.

Every operation of ``/schema/openapi.json`` is fuzzed in both generation modes: positive
(requests the document allows) and negative (requests it forbids). The run authenticates the
way a client does: the document's bearer scheme is given a fuzzing key, an API key of every
role with generous but finite limits, so that negative cases which drop or garble the
``Authorization`` header are sent without it (and must get a documented 401) while every other
case carries it.

Schema-valid requests rarely name anything that exists, so positive cases are shaped where no
schema can know better: promise and validate carts draw their SKUs, channels and destinations
from the served network, time budgets and cart sizes stay within the service's settings;
availability and position queries name real SKUs and nodes; holds and events are made
coherent; and path ids (reservations, events, keys) are drawn from ids seeded before the run
or harvested from earlier answers. Everything else is the document's own generation.

Checks on every answer (all about the server, none about the fuzzer's luck):

* ``not_a_server_error``: no 5xx;
* ``response_schema_conformance``: the body matches the schema documented for its status;
* ``status_code_conformance``: the status is documented for the operation;
* ``content_type_conformance``: the media type is the documented one (problem+json errors);
* ``response_headers_conformance``: documented headers are present and valid;
* ``negative_data_rejection``: a request the document forbids gets a 4xx, never a 2xx;
* ``ignored_auth`` (on each operation's first 2xx): the same request without a credential,
  and with a garbled one, is refused.

Left out: ``positive_data_acceptance`` (a schema-valid request may rightly name an unknown SKU
or reservation: 404/409/422; the report's 2xx shares measure that instead),
``max_response_time`` (latency is ``bench.http_load``'s), ``object_level_authorization``
(it needs several identities set up through schemathesis' own auth flows; holds belonging to
their principal are tested in ``tests/access``), and the checks that only apply to cases of
schemathesis' coverage or stateful phases (``missing_required_header``,
``unsupported_method``, ``use_after_free``, ``ensure_resource_availability``), which these
hypothesis strategies do not produce.

``PUT /v1/snapshot`` runs last: a generated snapshot that happens to be valid replaces the
demo network, and nothing may run on the smaller one afterwards. One positive snapshot case in
``SNAPSHOT_RESEND_EVERY`` re-sends the demo network itself (under a new version), so the swap
is exercised for real.

Usage::

    python -m bench.fuzz --json out/fuzz.json [--examples 10000] [--seed 0]

The server is started here (``promise serve --workers 2`` on the embedded demo network).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import math
import pathlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias, TypeVar, cast

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.errors import SerializationError
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import scenarios
from models import EARLIEST_DATE, LATEST_DATE, Snapshot
from promise.access.principal import Scope
from promise.access.rules import SECURITY_SCHEME
from promise.errors import PROBLEM_TYPE_PREFIX
from tests.launcher import ServerProcess

__all__ = [
    "DEFAULT_WEIGHTS",
    "FuzzReport",
    "Network",
    "OperationReport",
    "ServiceLimits",
    "allocate",
    "cases_of",
    "format_table",
    "fuzz_api",
    "load_schema",
    "main",
    "make_fuzz_key",
    "seed_resources",
]

T = TypeVar("T")
Operation: TypeAlias = "schemathesis.APIOperation[Any, Any, Any, Any]"
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
PROMISE = "POST /v1/promise"
VALIDATE = "POST /v1/promise/validate"
SNAPSHOT_PUT = "PUT /v1/snapshot"
# Relative share of the cases per operation, (positive, negative). Promise carries the most:
# it is what the service is for, and its positive cases must mostly answer 200 even counted
# together with its negative ones. Snapshots are slow to generate and to swap.
DEFAULT_WEIGHTS: dict[str, tuple[float, float]] = {
    PROMISE: (14.0, 3.0),
    VALIDATE: (3.0, 2.0),
    "GET /v1/availability": (3.0, 2.0),
    "GET /healthz": (0.2, 0.2),
    "GET /readyz": (0.2, 0.2),
    "GET /metrics": (0.5, 0.5),
    "GET /v1/snapshot": (0.5, 0.5),
    SNAPSHOT_PUT: (0.6, 0.6),
    "POST /v1/inventory/events": (3.0, 2.0),
    "GET /v1/inventory/events/{event_id}": (1.5, 1.0),
    "GET /v1/inventory/positions": (2.0, 1.0),
    "POST /v1/reservations": (4.0, 2.0),
    "GET /v1/reservations/{reservation_id}": (1.5, 1.0),
    "POST /v1/reservations/{reservation_id}/confirm": (1.5, 1.0),
    "POST /v1/reservations/{reservation_id}/release": (1.5, 1.0),
    "GET /v1/keys": (0.5, 0.5),
    "POST /v1/keys": (1.5, 1.0),
    "POST /v1/keys/{key_id}/revoke": (1.5, 1.0),
    "GET /v1/audit": (1.5, 1.0),
}
# An operation the table does not know yet (a new route) is fuzzed all the same.
NEW_OPERATION_WEIGHT = (1.5, 1.0)
# One positive snapshot case in this many re-sends the demo network (a real swap).
SNAPSHOT_RESEND_EVERY = 25
# Of positive cases with an id in their path, this share names an id that exists.
KNOWN_ID_SHARE = 0.8
SEEDED = 5  # reservations, events and keys made before the run
MAX_BATCH = 50  # events of a shaped batch
MAX_HELD_QUANTITY = 5  # units a line of a promise with reserve: true asks for at most
DEEP_STOCK = 15  # units beyond safety stock of a position that holds and events may touch
# A failure message is long (it quotes the body); a few per check are enough to debug from.
KEPT_FAILURES = 3
REQUEST_TIMEOUT_S = 60.0
CHECKS: tuple[CheckFunction, ...] = (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
)


@dataclasses.dataclass(frozen=True)
class ServiceLimits:
    """What the server's settings refuse that no schema can say (its defaults unless set)."""

    max_time_budget_ms: int = 2_000
    max_cart_lines: int = 100
    max_hold_ttl_s: int = 3600


@dataclasses.dataclass
class OperationReport:
    """What one operation's cases were answered, and the checks they failed."""

    operation: str
    requested: int = 0
    cases: Counter[str] = dataclasses.field(default_factory=Counter)
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    # Why 4xx answers said no: "status problem-type" (what keeps a share of 2xx down).
    problems: Counter[str] = dataclasses.field(default_factory=Counter)
    positive_2xx: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    check_failures: Counter[str] = dataclasses.field(default_factory=Counter)
    transport_errors: int = 0
    not_generated: list[str] = dataclasses.field(default_factory=list)
    failures: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def total(self) -> int:
        """Cases sent in both modes."""
        return sum(self.cases.values())

    @property
    def ok_share(self) -> float:
        """Share of cases answered 2xx."""
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return ok / self.total if self.total else 0.0

    @property
    def share_200(self) -> float:
        """Share of cases answered exactly 200."""
        return self.statuses[200] / self.total if self.total else 0.0

    @property
    def positive_ok_share(self) -> float:
        """Share of positive cases answered 2xx."""
        positive = self.cases[GenerationMode.POSITIVE.value]
        return self.positive_2xx / positive if positive else 0.0

    @property
    def clean(self) -> bool:
        """No check failed and every request reached the server."""
        return not self.check_failures and not self.transport_errors

    def as_json(self) -> dict[str, Any]:
        """The operation's report as JSON-ready values."""
        return {
            "operation": self.operation,
            "requested": self.requested,
            "cases": self.total,
            "cases_by_mode": dict(self.cases),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "problems": dict(self.problems.most_common()),
            "ok_share": round(self.ok_share, 4),
            "share_200": round(self.share_200, 4),
            "positive_ok_share": round(self.positive_ok_share, 4),
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "check_failures": dict(sorted(self.check_failures.items())),
            "transport_errors": self.transport_errors,
            "not_generated": self.not_generated,
            "failures": self.failures,
            "wall_s": round(self.wall_s, 2),
        }


@dataclasses.dataclass
class FuzzReport:
    """Every operation's report and the totals."""

    operations: dict[str, OperationReport] = dataclasses.field(default_factory=dict)
    # Operations whose first 2xx was replayed without and with a garbled credential.
    auth_checked: list[str] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0

    @property
    def cases(self) -> int:
        """Cases sent over every operation and mode."""
        return sum(report.total for report in self.operations.values())

    @property
    def server_errors(self) -> int:
        """5xx answers in all."""
        return sum(report.server_errors for report in self.operations.values())

    @property
    def schema_violations(self) -> int:
        """Answers whose body breaks the schema documented for their status, in all."""
        return sum(report.schema_violations for report in self.operations.values())

    @property
    def check_failures(self) -> Counter[str]:
        """Failed checks by name, in all."""
        total: Counter[str] = Counter()
        for report in self.operations.values():
            total.update(report.check_failures)
        return total

    @property
    def clean(self) -> bool:
        """No operation failed a check or lost a request."""
        return all(report.clean for report in self.operations.values())

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        statuses: Counter[int] = Counter()
        for report in self.operations.values():
            statuses.update(report.statuses)
        ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
        return {
            "cases": self.cases,
            "requested": sum(report.requested for report in self.operations.values()),
            "statuses": {str(status): n for status, n in sorted(statuses.items())},
            "ok_share": round(ok / self.cases, 4) if self.cases else 0.0,
            "server_errors": self.server_errors,
            "schema_violations": self.schema_violations,
            "check_failures": dict(sorted(self.check_failures.items())),
            "auth_checked": len(self.auth_checked),
            "wall_s": round(self.wall_s, 2),
            "operations": [report.as_json() for report in self.operations.values()],
        }


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


# --- the run ----------------------------------------------------------------------------------


def allocate(
    labels: list[str], total: int, weights: dict[str, tuple[float, float]] | None = None
) -> dict[tuple[str, GenerationMode], int]:
    """Cases to generate per operation and mode: ``total`` shared out by weight (at least 1)."""
    table = DEFAULT_WEIGHTS if weights is None else weights
    shares = {
        (label, mode): table.get(label, NEW_OPERATION_WEIGHT)[index]
        for label in labels
        for index, mode in enumerate(MODES)
    }
    scale = total / sum(shares.values())
    return {key: max(1, math.ceil(share * scale)) for key, share in shares.items()}


def load_schema(base_url: str, key: str) -> schemathesis.BaseSchema:
    """The document the server publishes, fetched and fuzzed with ``key`` as its bearer."""
    document = httpx.get(
        f"{base_url}/schema/openapi.json",
        headers={"Authorization": f"Bearer {key}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    document.raise_for_status()
    # Given to the document's security scheme (not as a fixed header), so that negative cases
    # which drop or garble the credential really are sent without it.
    config = SchemathesisConfig.from_dict(
        {"base-url": base_url, "auth": {"openapi": {SECURITY_SCHEME: {"bearer": key}}}}
    )
    return schemathesis.openapi.from_dict(document.json(), config=config)


def make_fuzz_key(base_url: str, admin_headers: dict[str, str]) -> str:
    """A key of every role with generous but finite limits, made through the admin API.

    Finite because the fuzz holds stock: the held-unit limit bounds what it can take from the
    network its promises run on (under a tenth of the demo network's units), and the rate
    limit is far above what one client sends.
    """
    answer = httpx.post(
        f"{base_url}/v1/keys",
        headers=admin_headers,
        json={
            "name": "fuzz",
            "scopes": [scope.value for scope in Scope],
            "rate_per_s": 5_000.0,
            "burst": 10_000,
            "max_open_holds": 10_000,
            "max_held_units": 50_000,
        },
        timeout=REQUEST_TIMEOUT_S,
    )
    answer.raise_for_status()
    return str(answer.json()["key"])


def seed_resources(base_url: str, key: str, network: Network) -> None:
    """Make a few reservations, events and keys, so that path ids can name existing ones."""
    headers = {"Authorization": f"Bearer {key}"}
    now = dt.datetime.now(dt.UTC).isoformat()
    with httpx.Client(base_url=base_url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        events = [
            {
                "event_id": f"fuzz-seed-{i}",
                "node_id": node_id,
                "sku": sku,
                "type": "receipt",
                "quantity": 1,
                "occurred_at": now,
                "seq": 1,
            }
            for i, (node_id, sku) in enumerate(network.positions[:SEEDED])
        ]
        answer = client.post("/v1/inventory/events", json={"events": events})
        answer.raise_for_status()
        network.harvest("POST /v1/inventory/events", answer.status_code, answer.json())
        for i, (node_id, sku) in enumerate(network.positions[-SEEDED:]):
            answer = client.post(
                "/v1/reservations",
                headers={"Idempotency-Key": f"fuzz-seed-{i}"},
                json={
                    "lines": [{"node_id": node_id, "sku": sku, "quantity": 1}],
                    "channel": network.channels[0],
                    "ttl_s": network.limits.max_hold_ttl_s,
                },
            )
            answer.raise_for_status()
            network.harvest("POST /v1/reservations", answer.status_code, answer.json())
            answer = client.post(
                "/v1/keys", json={"name": f"fuzz-victim-{i}", "scopes": ["analyst"]}
            )
            answer.raise_for_status()
            network.harvest("POST /v1/keys", answer.status_code, answer.json())
    if min(map(len, (network.event_ids, network.reservation_ids, network.key_ids))) < SEEDED:
        raise RuntimeError("seeding the fuzz run made fewer resources than asked")


def _ordered(operations: list[Operation]) -> list[Operation]:
    """The document's order, but the snapshot swap last (it may replace the network)."""
    return sorted(operations, key=lambda operation: operation.label == SNAPSHOT_PUT)


def _keep(report: OperationReport, kind: str, exc: BaseException) -> None:
    """Keep the first few failure messages of each kind."""
    kept = report.failures.setdefault(kind, [])
    if len(kept) < KEPT_FAILURES:
        kept.append(str(exc)[:3000])


def _json_body(response: schemathesis.Response) -> Any:
    """The answer's JSON, or None."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


@dataclasses.dataclass
class _Run:
    """One fuzz run: where it sends, what it knows and what it counted."""

    base_url: str
    network: Network
    session: requests.Session
    seed: int
    report: FuzzReport = dataclasses.field(default_factory=FuzzReport)

    def send(
        self, case: schemathesis.Case[Any], entry: OperationReport, mode: GenerationMode
    ) -> None:
        """Send one case, count its answer and run every check on it."""
        try:
            response = case.call(
                base_url=self.base_url, session=self.session, timeout=REQUEST_TIMEOUT_S
            )
        except SerializationError:
            return  # a case requests cannot send (it never reached the server)
        except requests.RequestException as exc:
            entry.transport_errors += 1
            _keep(entry, "transport", exc)
            return
        status = response.status_code
        entry.cases[mode.value] += 1
        entry.statuses[status] += 1
        ok = 200 <= status < 300
        if ok and mode is GenerationMode.POSITIVE:
            entry.positive_2xx += 1
        checks = list(CHECKS)
        if ok and entry.operation not in self.report.auth_checked:
            # Enforcement is the operation's, so one confirmation per run will do.
            self.report.auth_checked.append(entry.operation)
            checks.append(ignored_auth)
        transport_kwargs = {"base_url": self.base_url, "timeout": REQUEST_TIMEOUT_S}
        for check in checks:
            try:
                case.validate_response(response, checks=[check], transport_kwargs=transport_kwargs)
            except (AssertionError, BaseExceptionGroup) as exc:
                entry.check_failures[check.__name__] += 1
                if check is not_a_server_error:
                    entry.server_errors += 1
                elif check is response_schema_conformance:
                    entry.schema_violations += 1
                _keep(entry, check.__name__, exc)
        body = _json_body(response)
        self.network.harvest(entry.operation, status, body)
        if status >= 400 and isinstance(body, dict):
            kind = str(body.get("type", "?")).removeprefix(PROBLEM_TYPE_PREFIX)
            entry.problems[f"{status} {mode.value} {kind}"] += 1

    def run_mode(
        self,
        operation: Operation,
        entry: OperationReport,
        mode: GenerationMode,
        examples: int,
        *,
        round_: int = 0,
    ) -> None:
        """Generate and send up to ``examples`` cases of one operation in one mode.

        A later ``round_`` draws other cases than the first (hypothesis' derandomized runs
        always draw the same ones), still reproducibly.
        """
        seed = self.seed + round_

        @given(case=cases_of(operation, mode, self.network))
        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=seed == 0,
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            self.send(case, entry, mode)

        test = hypothesis_seed(seed)(exercise) if seed else exercise
        try:
            test()
        except Unsatisfiable:
            # No request of this mode exists (a route without parameters has no invalid
            # request but one without its credential, and a public one not even that).
            entry.not_generated.append(mode.value)


def fuzz_api(
    base_url: str,
    key: str,
    network: Network,
    *,
    examples: int,
    weights: dict[str, tuple[float, float]] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Fuzz every operation in both modes, ``examples`` cases in all; checked and counted."""
    schema = load_schema(base_url, key)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    if len(operations) != len(results):
        raise RuntimeError("the published document has operations schemathesis cannot read")
    budget = allocate([operation.label for operation in operations], examples, weights)
    started = time.perf_counter()
    with requests.Session() as session:
        run = _Run(base_url=base_url, network=network, session=session, seed=seed)

        def fuzz(operation: Operation, mode: GenerationMode, wanted: int, round_: int = 0) -> None:
            label = operation.label
            entry = run.report.operations.setdefault(label, OperationReport(operation=label))
            entry.requested += wanted
            mode_started = time.perf_counter()
            run.run_mode(operation, entry, mode, wanted, round_=round_)
            elapsed = time.perf_counter() - mode_started
            entry.wall_s += elapsed
            if progress is not None:
                statuses = dict(sorted(entry.statuses.items()))
                progress(
                    f"{label} {mode.value}: {entry.cases[mode.value]} cases, "
                    f"{statuses}, {dict(entry.check_failures)}, {elapsed:.1f} s"
                )

        ordered = _ordered(operations)
        for operation in ordered:
            if operation.label == SNAPSHOT_PUT:
                # Operations with few distinct requests (no parameters) cannot use their whole
                # share: promise cases make up the rest, before the swap that may end the network.
                swap = sum(budget[(SNAPSHOT_PUT, mode)] for mode in MODES)
                promise = next((op for op in ordered if op.label == PROMISE), None)
                shortfall = examples - run.report.cases - swap
                if promise is not None and shortfall > 0:
                    fuzz(promise, GenerationMode.POSITIVE, shortfall, round_=1)
            for mode in MODES:
                fuzz(operation, mode, budget[(operation.label, mode)])
    run.report.wall_s = time.perf_counter() - started
    return run.report


def format_table(report: FuzzReport) -> str:
    """A Markdown table of the report, one operation a row."""
    lines = [
        "| operation | cases | statuses | 5xx | schema violations | other check failures "
        "| 2xx share | positive 2xx share |",
        "|---|---:|---|---:|---:|---|---:|---:|",
    ]
    for entry in report.operations.values():
        other = {
            name: n
            for name, n in entry.check_failures.items()
            if name not in ("not_a_server_error", "response_schema_conformance")
        }
        statuses = " ".join(f"{status}:{n}" for status, n in sorted(entry.statuses.items()))
        lines.append(
            f"| {entry.operation} | {entry.total} | {statuses} | {entry.server_errors} "
            f"| {entry.schema_violations} | {other or 0} | {entry.ok_share:.1%} "
            f"| {entry.positive_ok_share:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz against a fresh server and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--examples", type=int, default=10_000, help="cases over every operation")
    parser.add_argument("--seed", type=int, default=0, help="0: hypothesis' derandomized run")
    parser.add_argument("--max-time-budget-ms", type=int, default=100)
    args = parser.parse_args(argv)
    limits = ServiceLimits(max_time_budget_ms=args.max_time_budget_ms)
    env = {"PROMISE_MAX_TIME_BUDGET_MS": str(limits.max_time_budget_ms)}
    with tempfile.TemporaryDirectory() as data_dir:
        server = ServerProcess(data_dir=pathlib.Path(data_dir), workers=2, env=env)
        with server.start():
            key = make_fuzz_key(server.base_url, server.auth_headers)
            network = Network.of(scenarios.demo_snapshot(), limits)
            seed_resources(server.base_url, key, network)
            report = fuzz_api(
                server.base_url,
                key,
                network,
                examples=args.examples,
                seed=args.seed,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
            errors_logged = '"level":"ERROR"' in server.log_path.read_text()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = report.as_json() | {"server_logged_errors": errors_logged}
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(format_table(report))
    summary = {k: v for k, v in document.items() if k != "operations"}
    print(json.dumps(summary))
    return 0 if report.clean and not errors_logged else 1


if __name__ == "__main__":
    sys.exit(main())
