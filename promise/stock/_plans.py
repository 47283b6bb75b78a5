"""What a hold asks for: the rows, channel, lifetime and limits of a reservation or promise hold.

Pure functions of a request, the snapshot's stock rules and the settings; the service fetches
what they need (a remembered promise answer) and places the plan under the rows' locks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from models import ChannelPolicy, PromiseResult, ServiceLevel
from promise.access.principal import Principal
from promise.stock.backend import HoldPlan
from promise.stock.config import StockSettings
from promise.stock.errors import StockRequestError
from promise.stock.holds import StockRules
from promise.stock.schemas import ReservationRequest

__all__ = [
    "MICROS",
    "PROMISE_KEYS",
    "RESERVATION_KEYS",
    "channel_policy",
    "hold_limits",
    "hold_ttl_us",
    "lines_plan",
    "memo_plan",
    "promise_memo",
    "promise_plan",
    "request_digest",
    "scoped_key",
]

# Idempotency keys of the two ways to hold, kept apart so one cannot replay the other.
RESERVATION_KEYS = "reservation:"
PROMISE_KEYS = "promise:"
MICROS = 1_000_000
# A plan's fields that every way to hold fills in the same: lifetime, key, digest, generation
# and the principal's limits (see ``HoldPlan``).
PlanFields = Mapping[str, Any]


def scoped_key(principal: Principal | None, idempotency_key: str) -> str:
    """An Idempotency-Key in the principal's own namespace (ids never contain a newline)."""
    return idempotency_key if principal is None else f"{principal.id}\n{idempotency_key}"


def request_digest(payload: str) -> str:
    """Fingerprint of a request body (its canonical JSON)."""
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def aggregate(lines: Sequence[tuple[str, str, int]]) -> tuple[tuple[str, str, int], ...]:
    """One line per (node, SKU), in first-seen order."""
    totals: dict[tuple[str, str], int] = {}
    for node, sku, quantity in lines:
        totals[(node, sku)] = totals.get((node, sku), 0) + quantity
    return tuple((node, sku, quantity) for (node, sku), quantity in totals.items())


def promise_memo(result: PromiseResult) -> dict[str, Any]:
    """What a reservation needs of a promise answer: channel and each option's allocation."""
    options: dict[str, list[tuple[str, str, int]]] = {}
    for option in result.options:
        lines = [
            (shipment.node_id, line.sku, line.quantity)
            for shipment in option.shipments
            for line in shipment.lines
        ]
        if lines:
            options[option.service_level.value] = list(aggregate(lines))
    recommended = None if result.recommended is None else result.recommended.value
    return {"channel": result.channel, "recommended": recommended, "options": options}


def channel_policy(rules: StockRules, channel: str, field: tuple[str | int, ...]) -> ChannelPolicy:
    """The channel's policy, or a 422 naming ``field``."""
    policy = rules.policies.get(channel)
    if policy is None:
        raise StockRequestError(f"no channel policy for channel {channel!r}", field)
    return policy


def hold_ttl_us(settings: StockSettings, ttl_s: int | None, field: tuple[str | int, ...]) -> int:
    """A hold's lifetime: the one asked for (at most ``max_hold_ttl_s``) or the default."""
    limit = settings.max_hold_ttl_s
    if ttl_s is not None and ttl_s > limit:
        raise StockRequestError(
            f"a hold lasts at most {limit} s here; {ttl_s} s was asked for", field
        )
    return (ttl_s or min(settings.hold_ttl_s, limit)) * MICROS


def hold_limits(settings: StockSettings, principal: Principal | None) -> dict[str, Any]:
    """The hold-plan fields that bind a principal to its limits (none for internal calls)."""
    if principal is None:
        return {}
    limits = principal.limits
    return {
        "principal": principal.id,
        "max_open_holds": limits.max_open_holds or settings.max_open_holds,
        "max_held_units": limits.max_held_units or settings.max_held_units,
    }


def memo_plan(
    rules: StockRules,
    promise_id: str,
    remembered: Mapping[str, Any],
    service_level: ServiceLevel | None,
    fields: PlanFields,
) -> tuple[HoldPlan, ChannelPolicy]:
    """The hold of one option of a remembered promise answer, and its channel's policy.

    The option is ``service_level``, or else the one the answer recommended.
    """
    level = service_level or (
        None if remembered["recommended"] is None else ServiceLevel(remembered["recommended"])
    )
    lines = None if level is None else remembered["options"].get(level.value)
    if level is None or not lines:
        raise StockRequestError(
            f"promise {promise_id} has no {level.value if level else 'recommended'} "
            "option with shipments to hold",
            ("service_level",),
        )
    channel = str(remembered["channel"])
    plan = HoldPlan(
        lines=tuple((str(n), str(s), int(q)) for n, s, q in lines),
        channel=channel,
        promise_id=promise_id,
        service_level=level.value,
        **fields,
    )
    return plan, channel_policy(rules, channel, ("promise_id",))


def lines_plan(
    rules: StockRules, request: ReservationRequest, fields: PlanFields
) -> tuple[HoldPlan, ChannelPolicy]:
    """The hold of a request's explicit lines (one per row), and its channel's policy."""
    assert request.lines is not None
    assert request.channel is not None
    for i, line in enumerate(request.lines):
        reason = rules.unknown(line.node_id, line.sku)
        if reason is not None:
            part = "node_id" if reason.startswith("unknown node") else "sku"
            raise StockRequestError(reason, ("lines", i, part))
    policy = channel_policy(rules, request.channel, ("channel",))
    plan = HoldPlan(
        lines=aggregate([(line.node_id, line.sku, line.quantity) for line in request.lines]),
        channel=request.channel,
        **fields,
    )
    return plan, policy


def promise_plan(
    settings: StockSettings,
    lines: Sequence[tuple[str, str, int]],
    channel: str,
    level: ServiceLevel,
    *,
    promise_id: str,
    explicit_level: bool,
    ttl_s: int | None,
    idempotency_key: str | None,
    principal: Principal | None,
    generation: int,
) -> HoldPlan:
    """The hold of one option of a fresh promise answer, judged on snapshot ``generation``."""
    return HoldPlan(
        lines=tuple(lines),
        channel=channel,
        ttl_us=hold_ttl_us(settings, ttl_s, ("hold_ttl_s",)),
        promise_id=promise_id,
        service_level=level.value,
        idempotency_key=(
            None
            if idempotency_key is None
            else PROMISE_KEYS + scoped_key(principal, idempotency_key)
        ),
        # A retry under the same key returns the first attempt's hold, even if the retry's solve
        # chose another allocation: the key names the checkout, not the answer.
        request_digest=request_digest(json.dumps([level.value if explicit_level else None, ttl_s])),
        snapshot_generation=generation,
        **hold_limits(settings, principal),
    )
