"""``promise consume`` and ``promise events replay | dlq list | dlq retry | send``.

Every command reads the same ``PROMISE_*`` settings as ``promise serve`` (the stock authority:
``PROMISE_DATABASE_URL``, else the embedded store under ``--data-dir``; the broker:
``PROMISE_NATS_URL`` and the stream names of :class:`~promise.events.config.EventSettings`).
Heavy modules are imported inside the commands: ``promise serve`` must set up the metrics
directory before anything imports prometheus_client.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promise.cli_options import data_dir_option, instant

if TYPE_CHECKING:
    from models import Snapshot
    from promise.events.broker import Broker
    from promise.events.config import EventSettings
    from promise.stock.sql import StockBackend

__all__ = ["register"]

# How long `promise events send` waits for the change it caused to be published.
SEND_WAIT_S = 10.0
SEND_POLL_S = 0.1


def _data_dir(args: argparse.Namespace) -> Path | None:
    """The embedded authority's directory, when given (else the settings' own)."""
    path: Path | None = args.data_dir
    return path


def _open_live(args: argparse.Namespace) -> StockBackend:
    """The live authority the settings name."""
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415

    return open_backend(StockSettings.from_env(data_dir=_data_dir(args)))


def _is_dsn(target: str) -> bool:
    """Whether ``target`` names a PostgreSQL database (a URL or key=value conninfo)."""
    return target.startswith(("postgresql://", "postgres://")) or "=" in target


def _open_store(target: str) -> StockBackend:
    """A store by PostgreSQL DSN (a URL or key=value conninfo) or SQLite file path."""
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415

    if _is_dsn(target):
        return open_backend(StockSettings(database_url=target))
    return open_backend(StockSettings(stock_path=Path(target)))


def _event_settings(**overrides: object) -> EventSettings:
    """Event settings from the environment, with ``overrides``."""
    from promise.events.config import EventSettings  # noqa: PLC0415

    return EventSettings.from_env(None, **overrides)


async def _broker(settings: EventSettings) -> Broker:
    """A connected broker (BrokerError when the server cannot be reached)."""
    from promise.events.jetstream import connect  # noqa: PLC0415

    return await connect(settings.nats_url, name=f"promise-cli-{os.getpid()}")


def _startup_snapshot(path: Path | None) -> Callable[[], Snapshot]:
    """What seeds an authority that has no live snapshot yet: the file, else the demo network."""

    def load() -> Snapshot:
        from models import Snapshot  # noqa: PLC0415

        if path is not None:
            return Snapshot.model_validate_json(path.read_bytes())
        import scenarios  # noqa: PLC0415

        return scenarios.generate_network()

    return load


# --- promise consume --------------------------------------------------------------------------


def _consume(args: argparse.Namespace) -> int:
    """Consume inventory events (and publish the outbox) until SIGTERM or SIGINT."""
    import anyio  # noqa: PLC0415

    from promise.logs import configure_logging  # noqa: PLC0415
    from promise.settings import Settings  # noqa: PLC0415
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.pg_pool import wait_for_database  # noqa: PLC0415

    settings = Settings.from_env(data_dir=args.data_dir)
    configure_logging(settings.log_level)
    stock_settings = StockSettings.from_env(data_dir=settings.data_dir)
    problem = wait_for_database(stock_settings)
    if problem is not None:
        sys.stderr.write(f"promise consume: {problem}\n")
        return 1
    overrides: dict[str, object] = {"events_consume": True}
    if args.publish is not None:
        overrides["events_publish"] = args.publish
    events = _event_settings(**overrides)
    anyio.run(
        _run_consumer,
        settings.snapshot_poll_ms / 1000,
        stock_settings,
        events,
        args.snapshot,
        args.metrics_port,
        # The consumer and the publisher share one event loop: uvloop's is cheaper per message.
        backend_options={"use_uvloop": True},
    )
    return 0


async def _run_consumer(
    poll_s: float,
    stock_settings: Any,
    events: EventSettings,
    snapshot_path: Path | None,
    metrics_port: int | None,
) -> None:
    """The consumer process: the live snapshot, the stock service and the backbone."""
    import anyio  # noqa: PLC0415
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415

    from promise.events.backbone import Backbone  # noqa: PLC0415
    from promise.events.metrics import EventMetrics  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415
    from promise.stock.service import StockService  # noqa: PLC0415
    from promise.stock.snapshots import SnapshotStore  # noqa: PLC0415

    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    backend = open_backend(stock_settings)
    store = SnapshotStore(
        backend,
        initial=_startup_snapshot(snapshot_path),
        # Nothing to warm: this process judges events, it solves nothing.
        warm=lambda _prepared: None,
        poll_interval_s=poll_s,
    )
    stock = StockService(backend, stock_settings, snapshots=store, outbox=events.events_publish)
    backbone = Backbone(events, stock, metrics)
    async with stock.running(), anyio.create_task_group() as tasks:
        await store.start()
        tasks.start_soon(store.follow)
        tasks.start_soon(backbone.run)
        sys.stderr.write("promise consume: consuming; SIGTERM or Ctrl-C stops\n")
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _signal in signals:
                break
        tasks.cancel_scope.cancel()


# --- promise events replay --------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    """Rebuild stock from the stream into a fresh store; print the report; 1 when it drifts."""
    import anyio  # noqa: PLC0415

    from promise.events.broker import BrokerError  # noqa: PLC0415
    from promise.events.replay import ReplayError, replay  # noqa: PLC0415

    settings = _event_settings()
    live = _open_live(args)
    into = _open_store(args.into)

    async def run() -> Any:
        broker = await _broker(settings)
        try:
            return await replay(
                broker,
                live,
                into,
                settings,
                from_seq=args.from_seq,
                since=args.since,
                batch=args.batch,
            )
        finally:
            await broker.close()

    try:
        report = anyio.run(run)
    except (ReplayError, BrokerError) as exc:
        sys.stderr.write(f"promise events replay: {exc}\n")
        return 2
    finally:
        live.close()
        into.close()
    sys.stdout.write(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    if report.drift:
        sys.stderr.write(
            f"drift: {len(report.drift)} of {report.rows_compared} rows differ from the live "
            "store (on_hand_delta = live - replayed)\n"
        )
        return 1
    sys.stderr.write(f"no drift: {report.rows_compared} rows equal the live store\n")
    return 0


# --- promise events dlq -----------------------------------------------------------------------


def _dead_letters(settings: EventSettings, limit: int | None) -> list[dict[str, Any]]:
    """The dead-letter stream's messages, oldest first."""
    import anyio  # noqa: PLC0415

    from promise.events.broker import (  # noqa: PLC0415
        DEAD_REASON,
        ORIGINAL_SEQ,
        ORIGINAL_SUBJECT,
    )

    async def run() -> list[dict[str, Any]]:
        broker = await _broker(settings)
        out: list[dict[str, Any]] = []
        try:
            async for message in broker.read(settings.events_dlq_stream):
                out.append(
                    {
                        "seq": message.stream_seq,
                        "stored_at": message.stored_at.isoformat(),
                        "reason": message.headers.get(DEAD_REASON, ""),
                        "original_subject": message.headers.get(ORIGINAL_SUBJECT, ""),
                        "original_seq": int(message.headers.get(ORIGINAL_SEQ, "0") or 0),
                        "body": message.data.decode(errors="replace"),
                    }
                )
                if limit is not None and len(out) >= limit:
                    break
        finally:
            await broker.close()
        return out

    return anyio.run(run)


def _dlq_list(args: argparse.Namespace) -> int:
    """Print dead letters as JSON lines."""
    for letter in _dead_letters(_event_settings(), args.limit):
        sys.stdout.write(json.dumps(letter) + "\n")
    return 0


def _dlq_retry(args: argparse.Namespace) -> int:
    """Publish dead letters to their original subjects again, then remove them from the DLQ."""
    import anyio  # noqa: PLC0415

    from promise.events.broker import Outgoing  # noqa: PLC0415

    settings = _event_settings()
    letters = _dead_letters(settings, None)
    wanted = set(args.seq or [])
    chosen = [x for x in letters if args.all or x["seq"] in wanted]
    missing = wanted - {x["seq"] for x in letters}
    if missing:
        sys.stderr.write(f"promise events dlq retry: no dead letter {sorted(missing)}\n")
        return 1

    async def run() -> int:
        broker = await _broker(settings)
        try:
            for letter in chosen:
                await broker.publish(
                    Outgoing(
                        subject=letter["original_subject"],
                        data=letter["body"].encode(),
                        # Retrying one dead letter twice publishes it once.
                        msg_id=f"retry:{settings.events_dlq_stream}:{letter['seq']}",
                    )
                )
                await broker.delete(settings.events_dlq_stream, letter["seq"])
        finally:
            await broker.close()
        return len(chosen)

    count = anyio.run(run)
    sys.stderr.write(f"retried {count} dead letter(s)\n")
    return 0


# --- promise events send ----------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    """Publish one inventory event and print the change the service published for it."""
    import anyio  # noqa: PLC0415

    from promise.events.broker import BrokerError  # noqa: PLC0415
    from promise.events.messages import event_message  # noqa: PLC0415
    from promise.stock.schemas import InventoryEvent  # noqa: PLC0415

    settings = _event_settings()
    event_id = args.event_id or f"sample-{uuid.uuid4().hex[:12]}"
    now = dt.datetime.now(dt.UTC)
    event = InventoryEvent.model_validate(
        {
            "event_id": event_id,
            "node_id": args.node,
            "sku": args.sku,
            "type": args.type,
            "quantity": args.quantity,
            "seq": args.seq if args.seq is not None else int(now.timestamp() * 1000),
            "occurred_at": now,
        }
    )
    out_subject = f"{settings.events_out_subject}.event.{args.node}"

    async def run() -> dict[str, Any] | None:
        broker = await _broker(settings)
        try:
            start = await broker.last_seq(settings.events_out_stream)
            published = await broker.publish(
                event_message(event, settings.events_subject, msg_id=event_id)
            )
            sys.stderr.write(
                f"published {event_id} to {settings.events_subject}.{args.node} "
                f"(stream seq {published.seq}); waiting for {out_subject}\n"
            )
            deadline = anyio.current_time() + args.wait
            while anyio.current_time() < deadline:
                async for message in broker.read(
                    settings.events_out_stream, subject_filter=out_subject, from_seq=start + 1
                ):
                    body: dict[str, Any] = json.loads(message.data)
                    if body.get("msg_id") == f"event:{event_id}":
                        return body
                await anyio.sleep(SEND_POLL_S)
            return None
        finally:
            await broker.close()

    try:
        change = anyio.run(run)
    except BrokerError as exc:
        sys.stderr.write(f"promise events send: {exc}\n")
        return 2
    if change is None:
        sys.stderr.write(
            f"nothing was published for {event_id} within {args.wait} s: is a consumer with "
            "PROMISE_EVENTS_PUBLISH running? (promise events dlq list shows refused events)\n"
        )
        return 1
    sys.stdout.write(json.dumps(change, indent=2) + "\n")
    return 0


# --- the parser -------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``consume`` and ``events`` to ``subparsers`` (from ``add_subparsers``)."""
    consume = subparsers.add_parser(
        "consume", help="apply inventory events from the stream (and publish the outbox)"
    )
    data_dir_option(consume)
    consume.add_argument(
        "--snapshot", type=Path, metavar="PATH", help="seeds an authority with no live snapshot"
    )
    consume.add_argument(
        "--publish",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also publish every change (default: PROMISE_EVENTS_PUBLISH)",
    )
    consume.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT"
    )
    consume.set_defaults(handler=_consume)

    events = subparsers.add_parser("events", help="replay the inventory stream; dead letters")
    actions = events.add_subparsers(dest="events_command", required=True)

    replay = actions.add_parser(
        "replay", help="rebuild stock from the stream into a fresh store and report drift"
    )
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--from-seq", type=int, metavar="N", help="from stream sequence N (1)")
    start.add_argument("--since", type=instant, metavar="T", help="from ISO 8601 instant T")
    replay.add_argument(
        "--into",
        required=True,
        metavar="STORE",
        help="a fresh store: a SQLite file path, or a PostgreSQL DSN (postgresql://... or "
        "key=value conninfo)",
    )
    replay.add_argument("--batch", type=int, default=1000, help="events per transaction")
    data_dir_option(replay)
    replay.set_defaults(handler=_replay)

    dlq = actions.add_parser("dlq", help="dead-lettered inventory events")
    dlq_actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_actions.add_parser("list", help="print dead letters as JSON lines")
    listing.add_argument("--limit", type=int, help="at most this many")
    listing.set_defaults(handler=_dlq_list)
    retry = dlq_actions.add_parser(
        "retry", help="publish dead letters to their original subject again"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--seq", type=int, action="append", help="a dead letter's seq (repeat)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    retry.set_defaults(handler=_dlq_retry)

    send = actions.add_parser(
        "send", help="publish one inventory event and print the change published for it"
    )
    send.add_argument("--node", required=True, help="node id")
    send.add_argument("--sku", required=True, help="SKU")
    send.add_argument(
        "--type",
        default="receipt",
        help="receipt, sale, shipment, adjustment, count, transfer_in, transfer_out",
    )
    send.add_argument("--quantity", type=int, default=1, help="units (default 1)")
    send.add_argument("--seq", type=int, help="per-(node, SKU) sequence (default: now in ms)")
    send.add_argument("--event-id", help="default: a new sample-... id")
    send.add_argument(
        "--wait", type=float, default=SEND_WAIT_S, help="seconds to wait for the change"
    )
    send.set_defaults(handler=_send)
