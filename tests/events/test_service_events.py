"""The backbone inside the app: events consumed by a worker, HTTP changes published, /readyz."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from promise.app import create_app
from promise.events.config import EventSettings
from promise.events.messages import event_message
from promise.settings import Settings
from promise.stock.config import StockSettings
from promise.stock.schemas import EventType
from tests.auth import authorized_client
from tests.events.events_cases import publish_all, read_stream
from tests.stock.stock_cases import event, network


def test_a_worker_consumes_the_stream_and_publishes_holds_and_events_with_atp(
    streams: EventSettings, tmp_path: Path
) -> None:
    """Stream event applied; an HTTP hold and release published with the row's ATP; readyz."""
    settings = streams.model_copy(update={"events_consume": True, "events_publish": True})
    app = create_app(
        Settings(data_dir=tmp_path),
        initial_snapshot=network,
        stock_settings=StockSettings(data_dir=tmp_path),
        event_settings=settings,
    )
    receipt = event("r1", EventType.RECEIPT, 5, 1, node_id="DC1", sku="A")
    asyncio.run(publish_all(settings, [event_message(receipt, settings.events_subject)]))
    with authorized_client(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/v1/inventory/events/r1").status_code != 200:
            assert time.monotonic() < deadline, "the stream's event was never applied"
            time.sleep(0.05)
        assert client.get("/v1/inventory/events/r1").json()["outcome"] == "applied"
        # The report turns to running once the batch is acknowledged, a moment after commit
        # (a batch that arrived before the snapshot was loaded was handed back once).
        while client.get("/readyz").json()["consumer"]["state"] != "running":
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        hold = client.post(
            "/v1/reservations",
            json={"lines": [{"node_id": "DC1", "sku": "A", "quantity": 3}], "channel": "web"},
            headers={"Idempotency-Key": "h1"},
        )
        assert hold.status_code == 201
        hold_id = hold.json()["reservation_id"]
        assert client.post(f"/v1/reservations/{hold_id}/release").status_code == 200
        position = client.get("/v1/inventory/positions?node_id=DC1&sku=A&channel=web").json()
        wanted = {"event:r1", f"hold:{hold_id}:DC1", f"release:{hold_id}:DC1"}
        while True:
            out = asyncio.run(read_stream(settings, settings.events_out_stream))
            got = {m.headers["Nats-Msg-Id"]: m for m in out}
            if wanted <= got.keys():
                break
            assert time.monotonic() < deadline + 30, f"published only {sorted(got)}"
            time.sleep(0.1)
        metrics = client.get("/metrics").text
    hold_message = got[f"hold:{hold_id}:DC1"]
    assert hold_message.subject == f"{settings.events_out_subject}.hold.DC1"
    held = json.loads(hold_message.data)
    assert held["reservation"]["lines"][0]["quantity"] == 3
    (row,) = held["rows"]
    assert row["held"] == 3
    # After the release the row's web ATP is what the position says now.
    (released_row,) = json.loads(got[f"release:{hold_id}:DC1"].data)["rows"]
    assert released_row["atp"]["web"] == position["available"]
    assert row["atp"]["web"] == position["available"] - 3
    assert 'promise_events_consumed_total{outcome="applied"} 1.0' in metrics
    assert "promise_outbox_depth" in metrics
