"""Shared inputs of the store, replay, KPI and gate tests: a small network and its carts."""

from __future__ import annotations

import datetime as dt
import functools

from models import PromiseRequest, ServiceLevel, Snapshot
from scenarios import ScenarioRecorder, ScenarioStore, generate_carts, generate_network
from solver import prepare, solve

SMALL_TAG = "small"
GROUND = (ServiceLevel.GROUND,)


@functools.cache
def small_network() -> Snapshot:
    """A 50-node, 200-SKU network: big enough for splits, small enough to build in a blink."""
    return generate_network(nodes=50, skus=200, seed=3)


@functools.cache
def small_requests(count: int = 40) -> tuple[PromiseRequest, ...]:
    """Realistic carts on the small network, quoted at the ground level."""
    carts = generate_carts(small_network(), count=count, seed=17)
    return tuple(c.model_copy(update={"service_levels": GROUND}) for c in carts)


def filled_store(count: int = 40, *, decisions: bool = False) -> ScenarioStore:
    """An in-memory store holding the small network and ``count`` scenarios tagged ``small``.

    Scenario ids are the cart ids; with ``decisions`` each scenario records the MIP's answer.
    """
    network = small_network()
    recorder = ScenarioRecorder.of(network)
    prepared = prepare(network)
    store = ScenarioStore(":memory:")
    store.add_network(recorder)
    records = [
        recorder.record(
            request,
            solve(request, prepared) if decisions else None,
            tags=(SMALL_TAG,),
            scenario_id=request.cart.cart_id,
            captured_at=network.as_of + dt.timedelta(minutes=k),
        )
        for k, request in enumerate(small_requests(count))
    ]
    store.add_records(records)
    return store
