"""Domain types reject bad input with clear messages and field paths, and accept good input."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from pydantic import ValidationError

from models import (
    Buffer,
    Cart,
    CartLine,
    Destination,
    InventoryPosition,
    NodeKind,
    PromiseRequest,
    Snapshot,
    WeightOverrides,
)
from tests.solver.network_cases import NEW_YORK, WEB, dc, ground, snapshot, stock, store


def error_of(call: Any) -> ValidationError:
    """The validation error a call raises (fails the test when it does not raise)."""
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("quantity", "valid"),
    [
        (1, True),  # the smallest real line
        (0, False),  # zero quantities are not lines
        (-3, False),  # negative quantities never come from a cart
        (10_001, False),  # above the cart maximum: a wholesale order, not a checkout cart
    ],
)
def test_line_quantity_must_be_positive_and_bounded(quantity: int, valid: bool) -> None:
    """Quantities are positive and at most 10,000; the error names the field."""

    def build() -> CartLine:
        """The line under test."""
        return CartLine(line_id="1", sku="A", quantity=quantity, unit_price=100)

    if valid:
        assert build().quantity == quantity
    else:
        assert error_of(build).errors()[0]["loc"] == ("quantity",)


def test_duplicate_line_ids_are_rejected() -> None:
    """Line ids identify lines in the answer, so a repeated id is an error naming it."""
    line = CartLine(line_id="dup", sku="A", quantity=1)
    error = error_of(lambda: Cart(cart_id="c", lines=(line, line)))
    assert "duplicate line_id: dup" in str(error)
    assert Cart(cart_id="c", lines=(line, line.model_copy(update={"line_id": "two"})))


def test_unknown_time_zones_are_rejected() -> None:
    """Nodes need an IANA time zone the tz database knows."""
    error = error_of(lambda: dc("x", time_zone="Mars/Olympus_Mons"))
    assert error.errors()[0]["loc"] == ("time_zone",)
    assert "unknown time zone 'Mars/Olympus_Mons'" in str(error)
    assert dc("x", time_zone="America/Denver").time_zone == "America/Denver"


@pytest.mark.parametrize("cutoff", ["16:00:00Z", "16:00:00+01:00", 57600])
def test_a_cutoff_with_an_offset_is_refused(cutoff: object) -> None:
    """A cutoff is a wall-clock time of the node's zone: an offset (or a Unix time) is refused.

    Such a time once validated and then failed every solve comparing it with the node's naive
    local clock: a snapshot swap was rejected at warm-up, an inline snapshot answered a 500.
    """
    error = error_of(lambda: dc("x", cutoff=cutoff))
    assert error.errors()[0]["loc"] == ("cutoff",)
    assert error.errors()[0]["type"] == "time_has_offset"
    assert dc("x", cutoff="16:30").cutoff == dt.time(16, 30)


def test_the_cutoff_schema_is_a_local_time_pattern() -> None:
    """The published schema says HH:MM[:SS] with no offset, not RFC 3339's "time" format."""
    schema = Snapshot.model_json_schema()["$defs"]["Node"]["properties"]["cutoff"]
    assert "format" not in schema
    pattern = re.compile(schema["pattern"])
    assert [bool(pattern.match(text)) for text in ("20:00:00", "07:30", "20:00:00Z", "24:00")] == [
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize("name", ["Z" * 300, "../../../../etc/passwd", "/etc/localtime", "\x00"])
def test_hostile_time_zone_names_are_validation_errors(name: str) -> None:
    """A name no zone has (over-long, a path, a NUL) is a validation error, never an OSError."""
    error = error_of(lambda: dc("x", time_zone=name))
    assert error.errors()[0]["loc"] == ("time_zone",)


def test_inventory_rows_for_unknown_nodes_are_rejected() -> None:
    """A snapshot's inventory rows must name its nodes and catalog SKUs."""
    error = error_of(lambda: snapshot([store("s1")], [stock("nowhere", "A", 1)]))
    assert "inventory rows for unknown nodes: nowhere" in str(error)
    error = error_of(lambda: snapshot([store("s1")], [stock("s1", "NOPE", 1)]))
    assert "SKUs not in items: NOPE" in str(error)
    assert snapshot([store("s1")], [stock("s1", "A", 1)]).inventory[0].node_id == "s1"


def test_snapshot_ids_must_be_unique() -> None:
    """Duplicate node ids and duplicate (node, sku) rows are named."""
    error = error_of(lambda: snapshot([store("s1"), store("s1")], []))
    assert "duplicate node_id: s1" in str(error)
    error = error_of(lambda: snapshot([store("s1")], [stock("s1", "A", 1), stock("s1", "A", 2)]))
    assert "duplicate inventory (node_id, sku): s1/A" in str(error)


def test_reserved_cannot_exceed_on_hand() -> None:
    """Reservations are taken from units on hand."""
    error = error_of(lambda: InventoryPosition(node_id="n", sku="A", on_hand=2, reserved=3))
    assert "reserved (3) exceeds on_hand (2)" in str(error)


def test_services_name_known_nodes_and_give_eight_zones() -> None:
    """Carrier services cover zones 1..8 and only serve nodes the snapshot has."""
    error = error_of(lambda: ground(transit_days=(1, 2, 3)))
    assert "transit_days needs 8 entries" in str(error)
    error = error_of(lambda: snapshot([store("s1")], [], services=[ground(node_ids=("ghost",))]))
    assert "service ground names unknown nodes: ghost" in str(error)


def test_unknown_fields_are_rejected_and_models_are_frozen() -> None:
    """Extra fields are errors and instances cannot be mutated."""
    error = error_of(lambda: Destination(postal_code="10001", planet="earth"))  # type: ignore[call-arg]
    assert error.errors()[0]["type"] == "extra_forbidden"
    with pytest.raises(ValidationError):
        NEW_YORK.postal_code = "90210"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give a postal_code or both lat and lon"),  # nothing identifies the place
        ({"lat": 40.0}, "lat and lon must be given together"),  # half a coordinate
        ({"lat": 91.0, "lon": 0.0}, "less than or equal to 90"),  # off the globe
    ],
)
def test_destination_needs_a_postal_code_or_a_point(fields: dict[str, float], message: str) -> None:
    """A destination is a postal code or a full, valid coordinate."""
    assert message in str(error_of(lambda: Destination(**fields)))


def test_requests_check_levels_and_aware_times() -> None:
    """Service levels are unique and requested_at carries a time zone."""
    cart = Cart(cart_id="c", lines=(CartLine(line_id="1", sku="A", quantity=1),))
    error = error_of(
        lambda: PromiseRequest(cart=cart, destination=NEW_YORK, service_levels=("ground", "ground"))
    )
    assert "service_levels must not repeat" in str(error)
    error = error_of(
        lambda: PromiseRequest(
            cart=cart, destination=NEW_YORK, requested_at=dt.datetime(2026, 11, 30, 12, 0)
        )
    )
    assert error.errors()[0]["loc"] == ("requested_at",)


def test_buffers_and_weight_overrides() -> None:
    """Buffers take the larger of units and percent; overrides replace only what they set."""
    assert Buffer(units=1, percent=20).units_for(on_hand=12) == 3
    assert Buffer(units=2, percent=10).units_for(on_hand=5) == 2
    assert WEB.buffer_units(NodeKind.STORE, 7) == 1
    assert WEB.buffer_units(NodeKind.DC, 7) == 0
    weights = WeightOverrides(split_penalty=0, shipping=2.0).apply(WEB.weights)
    assert (weights.split_penalty, weights.shipping) == (0, 2.0)
    assert weights.lateness_per_day == WEB.weights.lateness_per_day


def test_snapshot_json_round_trip() -> None:
    """A snapshot survives JSON unchanged."""
    snap = snapshot([dc("d"), store("s1")], [stock("d", "A", 4), stock("s1", "B", 2)])
    assert Snapshot.model_validate_json(snap.model_dump_json()) == snap


def test_capacity_precedence() -> None:
    """Remaining capacity on a date beats the per-node daily capacity, which beats the default."""
    day = dt.date(2026, 12, 1)
    service = ground(
        daily_capacity=50,
        daily_capacity_by_node={"s1": 20},
        remaining_capacity={"s1": {day: 3}},
    )
    assert service.capacity_on("s1", day) == 3
    assert service.capacity_on("s1", day + dt.timedelta(days=1)) == 20
    assert service.capacity_on("s2", day) == 50
    error = error_of(
        lambda: snapshot([store("s1")], [], services=[ground(daily_capacity_by_node={"x": 1})])
    )
    assert "names unknown nodes: x" in str(error)
