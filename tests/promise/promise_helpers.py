"""Hand-built tiny snapshots and request bodies shared by the service tests.

The tiny network has two nodes far apart and one SKU. Each snapshot version stocks the SKU at
exactly one node, so an answer's shipments reveal which version produced it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from models import (
    CarrierService,
    CatalogItem,
    ChannelPolicy,
    InventoryPosition,
    Location,
    Node,
    NodeKind,
    PromiseResult,
    ServiceLevel,
    Snapshot,
    ZoneRate,
)

# Limits of the end-to-end demo server: small enough that the 413 test sends little, large
# enough for a body with the tiny snapshot inline.
E2E_MAX_BODY_BYTES = 256 * 1024
E2E_MAX_CART_LINES = 40
E2E_MAX_TIME_BUDGET_MS = 500

TINY_SKU = "SKU-T1"
# Version -> the one node that stocks TINY_SKU in it.
TINY_STOCK = {"tiny-v1": "CHI", "tiny-v2": "DAL"}
# A Tuesday afternoon: every node works, ground picks up, nothing is a holiday.
REQUESTED_AT = "2026-12-01T15:00:00Z"
# Indianapolis: a lat/lon destination, so no postal-code lookup is involved.
TINY_DESTINATION = {"lat": 39.77, "lon": -86.16}
PROMETHEUS_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")


def tiny_snapshot(version: str) -> Snapshot:
    """Two nodes (Chicago, Dallas), one ground service, TINY_SKU stocked at one node."""
    nodes = (
        Node(
            node_id="CHI",
            kind=NodeKind.DC,
            location=Location(lat=41.88, lon=-87.63),
            region="IL",
            time_zone="America/Chicago",
        ),
        Node(
            node_id="DAL",
            kind=NodeKind.DC,
            location=Location(lat=32.78, lon=-96.80),
            region="TX",
            time_zone="America/Chicago",
        ),
    )
    ground = CarrierService(
        service_id="ground",
        carrier="tiny",
        service_level=ServiceLevel.GROUND,
        transit_days=(1, 1, 2, 2, 3, 4, 5, 5),
        rates=tuple(ZoneRate(base=500 + 100 * zone, per_kg=40) for zone in range(8)),
    )
    return Snapshot(
        version=version,
        as_of=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC),
        nodes=nodes,
        services=(ground,),
        items=(CatalogItem(sku=TINY_SKU, weight_g=500, list_price=1999),),
        inventory=(InventoryPosition(node_id=TINY_STOCK[version], sku=TINY_SKU, on_hand=10),),
        policies=(ChannelPolicy(channel="web"),),
    )


def tiny_body(cart_id: str = "tiny-cart", quantity: int = 2) -> dict[str, Any]:
    """A promise body for TINY_SKU to the tiny destination."""
    return {
        "cart": {
            "cart_id": cart_id,
            "channel": "web",
            "lines": [{"line_id": "l1", "sku": TINY_SKU, "quantity": quantity, "unit_price": 1999}],
        },
        "destination": dict(TINY_DESTINATION),
        "requested_at": REQUESTED_AT,
    }


def result_of(answer: dict[str, Any]) -> PromiseResult:
    """The engine's result inside an HTTP answer (without the service's own fields)."""
    service_fields = ("promise_id", "snapshot_version", "reservation")
    fields = {k: v for k, v in answer.items() if k not in service_fields}
    return PromiseResult.model_validate(fields)


def shipping_nodes(answer: dict[str, Any]) -> set[str]:
    """Nodes that ship anything in any option of an answer."""
    return {shipment["node_id"] for option in answer["options"] for shipment in option["shipments"]}


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    for line in text.splitlines():
        match = PROMETHEUS_SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        if all(part in (match["labels"] or "") for part in wanted):
            total += float(match["value"])
    return total


PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_of(response: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """The problem document of ``response``, checking its status and media type."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem: dict[str, Any] = response.json()
    return problem


def problem_fields(problem: dict[str, Any]) -> set[str]:
    """The dotted field paths a problem document names."""
    return {error["field"] for error in problem["errors"]}


def tiny_event(**fields: object) -> dict[str, Any]:
    """A valid receipt event body for TINY_SKU at CHI, with ``fields`` replaced."""
    event: dict[str, Any] = {
        "event_id": "e1",
        "node_id": "CHI",
        "sku": TINY_SKU,
        "type": "receipt",
        "quantity": 3,
        "seq": 1,
        "occurred_at": "2026-12-01T10:00:00Z",
    }
    event.update(fields)
    return event


def tiny_app_client(
    data_dir: Path, **overrides: object
) -> contextlib.AbstractContextManager[TestClient[Litestar]]:
    """A started in-process client, with a key of every role, of an app on tiny-v1."""
    from promise.app import create_app  # noqa: PLC0415 - keeps the helpers import-light
    from promise.settings import Settings  # noqa: PLC0415
    from tests.auth import authorized_client  # noqa: PLC0415

    settings = Settings.from_env({}, data_dir=data_dir, **overrides)
    return authorized_client(
        create_app(settings, initial_snapshot=lambda: tiny_snapshot("tiny-v1"))
    )
