"""The hostile bench's inputs: oversized, amplifying and just-admitted bodies per route.

Each :class:`Attack` names a route, a body built on demand, the memory budget it is judged
against and whether the limits must refuse it (see :mod:`bench.hostile`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from collections.abc import Callable
from typing import Any

from bench.hostile_http import Body
from promise.body_limits import BodyCost
from promise.settings import Settings

__all__ = ["INLINE_ATTEMPTS", "Attack", "attacks"]

MIB = 1024 * 1024
KIB = 1024
INLINE_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Attack:
    """One input: where it goes, its body, and whether the limits should refuse it."""

    name: str
    method: str
    path: str
    body: Callable[[], Body]
    budget_mib: int
    refused: bool = True
    extra_headers: tuple[tuple[str, str], ...] = ()
    head_padding: int = 0
    # Copies sent at once (each worker takes one upload to the snapshot route at a time).
    concurrency: int = 1


def _items(prefix: bytes, item: bytes, suffix: bytes, count: int) -> bytes:
    """``prefix`` + ``count`` copies of ``item`` joined by commas + ``suffix``."""
    return prefix + b",".join(itertools.repeat(item, count)) + suffix


def _sized(prefix: bytes, item: bytes, suffix: bytes, budget_mib: int, *, over: bool) -> bytes:
    """Items whose pre-scan bound lies just over (or just under) a budget of ``budget_mib``."""
    # The bound is linear in the count: measure it at two counts and solve.
    one = BodyCost.of(_items(prefix, item, suffix, 1)).bound
    two = BodyCost.of(_items(prefix, item, suffix, 2)).bound
    per_item = two - one
    count = (budget_mib * MIB - (one - per_item)) // per_item
    count = count + 1 if over else count
    body = _items(prefix, item, suffix, count)
    assert (BodyCost.of(body).bound > budget_mib * MIB) == over
    return body


PROMISE_PREFIX = b'{"cart":{"cart_id":"c","lines":['
PROMISE_SUFFIX = b']},"destination":{"postal_code":"10001"}}'
EVENTS_PREFIX = b'{"events":['
EVENTS_SUFFIX = b"]}"
# The flood of the security review: 1 MiB of empty items.
FLOOD_ITEMS = 349_526
# An event of as many unknown keys as the model has fields: 17 field errors each, unbounded.
TEN_UNKNOWN_KEYS = b"{" + b",".join(b'"k%d":0' % i for i in range(10)) + b"}"


def _bad_capacities(nodes: int) -> bytes:
    """A snapshot whose one service has a bad capacity for each of ``nodes`` nodes, twice."""
    daily = b",".join(b'"n%d":-1' % i for i in range(nodes))
    dated = b",".join(b'"n%d":{"2026-12-01":-1}' % i for i in range(nodes))
    return (
        b'{"services":[{"service_id":"s","service_level":"ground",'
        b'"transit_days":[1,1,1,1,1,1,1,1],"rates":[],'
        b'"daily_capacity_by_node":{' + daily + b'},"remaining_capacity":{' + dated + b"}}]}"
    )


def _inline_over_nodes(cart: dict[str, Any], settings: Settings) -> bytes:
    """A promise body whose inline snapshot is the demo network with one node too many."""
    import scenarios  # noqa: PLC0415 - heavy, only while the inputs are built

    snapshot = scenarios.demo_snapshot()
    nodes = [node.model_dump(mode="json") for node in snapshot.nodes]
    template = nodes[0]
    while len(nodes) <= settings.max_inline_snapshot_nodes:
        nodes.append({**template, "node_id": f"extra-{len(nodes)}"})
    inline = snapshot.model_dump(mode="json", exclude={"inventory", "inventory_table"})
    inline["nodes"] = nodes
    return json.dumps({**cart, "snapshot": inline}).encode()


def _inline_over_rows(cart: dict[str, Any], settings: Settings) -> bytes:
    """A promise body whose inline snapshot holds one inventory row too many (columnar)."""
    import scenarios  # noqa: PLC0415

    snapshot = scenarios.demo_snapshot()
    # Short node ids first: 100,001 rows must fit in the 4 MiB a promise body may have.
    node_ids = sorted((n.node_id for n in snapshot.nodes), key=len)
    pairs = itertools.islice(
        itertools.product(node_ids, [i.sku for i in snapshot.items]),
        settings.max_inline_snapshot_rows + 1,
    )
    row_nodes, skus = (list(column) for column in zip(*pairs, strict=True))
    rows = len(row_nodes)
    table = {
        "node_id": row_nodes,
        "sku": skus,
        "on_hand": [5] * rows,
        "reserved": [0] * rows,
        "safety_stock": [0] * rows,
        "unit_cost": [0] * rows,
    }
    inline = snapshot.model_dump(mode="json", exclude={"inventory", "inventory_table"})
    inline["inventory_table"] = table
    return json.dumps({**cart, "snapshot": inline}).encode()


def attacks(settings: Settings, cart: dict[str, Any]) -> tuple[list[Attack], list[Attack]]:
    """The inputs the limits must refuse fast, and those they admit (just under a budget)."""
    small, snap = settings.max_body_memory_mib, settings.max_snapshot_memory_mib
    over_body = settings.max_body_bytes + 1
    over_snapshot = settings.max_snapshot_bytes + 1
    row = b'{"node_id":"dc-01","sku":"SKU-000001","on_hand":1}'
    refused = [
        Attack(
            "promise: 1 byte over the byte limit",
            "POST",
            "/v1/promise",
            lambda: Body.repeated(b" ", over_body, declare=True),
            small,
        ),
        Attack(
            "events: 1 byte over the byte limit",
            "POST",
            "/v1/inventory/events",
            lambda: Body.repeated(b" ", over_body, declare=True),
            small,
        ),
        Attack(
            "reservations: 1 byte over the byte limit",
            "POST",
            "/v1/reservations",
            lambda: Body.repeated(b" ", over_body, declare=True),
            small,
            extra_headers=(("idempotency-key", "hostile-1"),),
        ),
        Attack(
            # A head is refused once a read ends inside it past the limit: one read (up to
            # 256 KiB) may complete a head a little over the limit, and is then answered.
            "promise: a header of 1 MiB",
            "POST",
            "/v1/promise",
            lambda: Body.of(b"{}"),
            small,
            head_padding=MIB,
        ),
        Attack(
            "promise: a header of 64 MiB",
            "POST",
            "/v1/promise",
            lambda: Body.of(b"{}"),
            small,
            head_padding=64 * MIB,
        ),
        Attack(
            "snapshot: 1 byte over the byte limit",
            "PUT",
            "/v1/snapshot",
            lambda: Body.repeated(b" ", over_snapshot, declare=True),
            snap,
        ),
        Attack(
            "snapshot: 256 MiB, Content-Length",
            "PUT",
            "/v1/snapshot",
            lambda: Body.repeated(b"{},", 256 * MIB, declare=True),
            snap,
        ),
        Attack(
            "snapshot: 256 MiB, chunked",
            "PUT",
            "/v1/snapshot",
            lambda: Body.repeated(b"{},", 256 * MIB, declare=False),
            snap,
        ),
        Attack(
            "snapshot: 32 MiB of {} (11 M objects)",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_items(b'{"nodes":[', b"{}", b"]}", (32 * MIB - 12) // 3)),
            snap,
        ),
        Attack(
            # Each worker takes them one after another: the last waits for the others.
            "snapshot: 4 uploads of 8 MiB of {} at once",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_items(b'{"nodes":[', b"{}", b"]}", (8 * MIB - 12) // 3)),
            snap,
            concurrency=4,
        ),
        Attack(
            "snapshot: {} just over the memory budget",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_sized(b'{"nodes":[', b"{}", b"]}", snap, over=True)),
            snap,
        ),
        Attack(
            "promise: 349,526 {} in 1 MiB",
            "POST",
            "/v1/promise",
            lambda: Body.of(_items(PROMISE_PREFIX, b"{}", PROMISE_SUFFIX, FLOOD_ITEMS)),
            small,
        ),
        Attack(
            "events: 349,526 {} in 1 MiB",
            "POST",
            "/v1/inventory/events",
            lambda: Body.of(_items(EVENTS_PREFIX, b"{}", EVENTS_SUFFIX, FLOOD_ITEMS)),
            small,
        ),
        Attack(
            "promise: {} just over the memory budget",
            "POST",
            "/v1/promise",
            lambda: Body.of(_sized(PROMISE_PREFIX, b"{}", PROMISE_SUFFIX, small, over=True)),
            small,
        ),
        Attack(
            "promise: arrays nested 1,000,000 deep",
            "POST",
            "/v1/promise",
            lambda: Body.of(b"[" * 1_000_000 + b"]" * 1_000_000),
            small,
        ),
        Attack(
            "snapshot: objects nested 100,000 deep",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
            snap,
        ),
        Attack(
            "promise: a cart of 100,000 unknown keys",
            "POST",
            "/v1/promise",
            lambda: Body.of(
                b'{"cart":{"cart_id":"c",'
                + b",".join(b'"k%d":0' % i for i in range(100_000))
                + b'},"destination":{"postal_code":"10001"}}'
            ),
            small,
        ),
        Attack(
            "events: 5,000 events of 10 unknown keys",
            "POST",
            "/v1/inventory/events",
            lambda: Body.of(_items(EVENTS_PREFIX, TEN_UNKNOWN_KEYS, EVENTS_SUFFIX, 5000)),
            small,
        ),
        Attack(
            "snapshot: a service of 40,000 bad capacity entries",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_bad_capacities(20_000)),
            snap,
        ),
        Attack(
            "promise: 500 empty lines (1,500 field errors)",
            "POST",
            "/v1/promise",
            lambda: Body.of(_items(PROMISE_PREFIX, b"{}", PROMISE_SUFFIX, 500)),
            small,
        ),
    ]
    nodes_body = _inline_over_nodes(cart, settings)
    rows_body = _inline_over_rows(cart, settings)
    for attempt in range(INLINE_ATTEMPTS):
        over_nodes = attempt % 2 == 0
        refused.append(
            Attack(
                f"inline snapshot over the {'node' if over_nodes else 'row'} limit #{attempt + 1}",
                "POST",
                "/v1/promise",
                functools.partial(Body.of, nodes_body if over_nodes else rows_body),
                small,
            )
        )
    admitted = [
        Attack(
            "snapshot: {} just under the memory budget",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_sized(b'{"nodes":[', b"{}", b"]}", snap, over=False)),
            snap,
            refused=False,
        ),
        Attack(
            "snapshot: valid rows just under the memory budget",
            "PUT",
            "/v1/snapshot",
            lambda: Body.of(_sized(b'{"inventory":[', row, b"]}", snap, over=False)),
            snap,
            refused=False,
        ),
        Attack(
            "promise: {} just under the memory budget",
            "POST",
            "/v1/promise",
            lambda: Body.of(_sized(PROMISE_PREFIX, b"{}", PROMISE_SUFFIX, small, over=False)),
            small,
            refused=False,
        ),
    ]
    return refused, admitted
