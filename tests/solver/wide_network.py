"""A network of tens of thousands of nodes, every one stocking the cart (deadline tests)."""

from __future__ import annotations

from models import Cart, CartLine, Destination, InventoryTable, PromiseRequest, Snapshot
from scenarios import generate_network

# Pick labour below one unit's pick time: every node is visited, none can ship. A greedy pass
# then builds every node's slots, the most expensive pass there is.
STARVED_LABOUR_MINUTES = 5
STARVED_PICK_SECONDS = 600


def wide_snapshot(copies: int, skus: int) -> Snapshot:
    """``copies`` × 1,000 nodes, each stocking the first ``skus`` SKUs (columnar rows)."""
    base = generate_network(nodes=1_000, skus=max(skus, 50))
    nodes = tuple(
        node.model_copy(
            update={
                "node_id": f"{node.node_id}-{copy}",
                "daily_labour_minutes": STARVED_LABOUR_MINUTES,
                "pick_seconds": STARVED_PICK_SECONDS,
            }
        )
        for copy in range(copies)
        for node in base.nodes
    )
    stocked = [item.sku for item in base.items[:skus]]
    node_ids = tuple(node.node_id for node in nodes for _ in stocked)
    rows = len(node_ids)
    table = InventoryTable(
        node_id=node_ids,
        sku=tuple(stocked) * len(nodes),
        on_hand=(10,) * rows,
        reserved=(0,) * rows,
        safety_stock=(0,) * rows,
        unit_cost=(500,) * rows,
    )
    # Every service picks up everywhere (no per-node lists that would name the base's ids).
    services = tuple(
        service.model_copy(
            update={"node_ids": (), "daily_capacity_by_node": {}, "remaining_capacity": {}}
        )
        for service in base.services
    )
    return Snapshot(
        version="wide",
        as_of=base.as_of,
        nodes=nodes,
        services=services,
        items=base.items,
        inventory_table=table,
        policies=base.policies,
    )


def wide_request(snapshot: Snapshot, lines: int, time_budget_ms: int) -> PromiseRequest:
    """A cart of the first ``lines`` SKUs to a US point, with ``time_budget_ms``."""
    cart = Cart(
        cart_id="wide",
        channel=snapshot.policies[0].channel,
        lines=tuple(
            CartLine(line_id=f"l{i}", sku=item.sku, quantity=50)
            for i, item in enumerate(snapshot.items[:lines])
        ),
    )
    return PromiseRequest(
        cart=cart,
        destination=Destination(lat=40.7, lon=-74.0),
        time_budget_ms=time_budget_ms,
    )
