"""Command line: ``promise serve``, ``promise demo``, ``snapshot-export`` and ``openapi``.

This module imports the app lazily: ``serve`` must set ``PROMETHEUS_MULTIPROC_DIR`` before any
process imports prometheus_client, so that the workers' metrics are summed.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from promise import metrics_dir as metrics_dirs
from promise.access.cli import register as register_access_commands
from promise.events.cli import register as register_event_commands
from promise.pricing.cli import register as register_pricing_commands
from promise.reoptimise_cli import register as register_reoptimise_command
from promise.settings import Settings, SettingsError
from scenarios.cli import register as register_scenario_commands

__all__ = ["build_parser", "main"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_SUBDIR = "metrics"
# A capture path with this suffix names one DuckDB file (see promise.capture.capture_file).
CAPTURE_FILE_SUFFIX = ".duckdb"
# The demo prints a cart with a few lines: one-line carts make a dull first impression.
DEMO_MIN_LINES = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``promise`` command."""
    parser = argparse.ArgumentParser(
        prog="promise", description="Omnichannel promise engine: HTTP service and tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="serve the HTTP API (the embedded demo network unless --snapshot is given)"
    )
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 2)")
    serve.add_argument("--snapshot", type=Path, metavar="PATH", help="snapshot JSON to serve")
    serve.add_argument("--data-dir", type=Path, metavar="PATH", help="shared state (./data)")
    serve.add_argument(
        "--capture",
        type=Path,
        metavar="PATH",
        help=(
            "capture served promises as scenarios (a directory: one DuckDB file per worker; "
            "a .duckdb file takes --workers 1)"
        ),
    )
    serve.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )

    demo = commands.add_parser("demo", help="promise one sample cart on the demo network")
    demo.add_argument("--seed", type=int, default=11, help="seed of the sample cart")

    export = commands.add_parser(
        "snapshot-export", help="write the demo network's snapshot JSON (for --snapshot)"
    )
    export.add_argument("path", type=Path, metavar="PATH")
    commands.add_parser(
        "openapi",
        help="print the OpenAPI document the service publishes (tests/promise/openapi.json)",
    )
    # The analysts' commands (replay, compare, regress, golden, scenarios, runs) live with the
    # scenario store.
    register_scenario_commands(commands)
    # Keys and the audit trail live with the access package.
    register_access_commands(commands)
    # The event backbone: the standalone consumer, replay and dead letters.
    register_event_commands(commands)
    register_reoptimise_command(commands)
    # The opportunity-cost price table: one pricing run.
    register_pricing_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    """Run uvicorn with the configured number of worker processes."""
    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        workers=args.workers,
        snapshot_path=args.snapshot,
        data_dir=args.data_dir,
        capture_path=args.capture,
        log_level=args.log_level,
    )
    # The workers read the re-pricing job's settings themselves: refuse bad ones here, once.
    from promise.pricing.config import PricingSettings  # noqa: PLC0415 - only serve needs it

    PricingSettings.from_env()
    # Workers may start in another directory; give them absolute paths.
    snapshot_path = settings.snapshot_path.resolve() if settings.snapshot_path else None
    capture_path = settings.capture_path.resolve() if settings.capture_path else None
    if snapshot_path is not None and not snapshot_path.is_file():
        sys.stderr.write(f"promise serve: no snapshot file at {snapshot_path}\n")
        return 2
    if (
        capture_path is not None
        and capture_path.suffix == CAPTURE_FILE_SUFFIX
        and settings.workers > 1
    ):
        # DuckDB lets one process write a file: every other worker would drop its captures.
        sys.stderr.write(
            f"promise serve: --capture {capture_path} is one file, which only one of "
            f"{settings.workers} workers could write; give a directory instead "
            f"(one file per worker), e.g. --capture {capture_path.with_suffix('')}\n"
        )
        return 2
    data_dir = settings.data_dir.resolve()
    settings = settings.model_copy(
        update={"snapshot_path": snapshot_path, "data_dir": data_dir, "capture_path": capture_path}
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    # A directory of this run's own: other servers on the data dir keep theirs, and samples of
    # an earlier run (removed here once its owner is gone) are not summed with this one's.
    metrics = metrics_dirs.claim(data_dir / METRICS_SUBDIR)
    # Removed at exit, once the workers have stopped; after a kill, by the next server's claim.
    atexit.register(metrics.release)
    os.environ[MULTIPROC_ENV] = str(metrics.path)
    os.environ.update(settings.to_env())
    # Solves run on a thread pool; glibc gives each new thread its own malloc arena, which
    # fragments and creeps upward under long load. Two arenas keep worker memory flat (read
    # by each spawned worker at start; an operator's own value wins).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")

    import uvicorn  # noqa: PLC0415 - after the environment is set, see the module docstring

    from promise.http_protocol import BoundedHttpToolsProtocol  # noqa: PLC0415
    from promise.logs import configure_logging, uvicorn_log_config  # noqa: PLC0415
    from promise.supervisor import Supervisor, supports_reuseport  # noqa: PLC0415

    configure_logging(settings.log_level)
    supervisor: Supervisor | None = None
    if settings.workers > 1 and settings.port != 0 and supports_reuseport():
        supervisor = Supervisor(
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=uvicorn_log_config(settings.log_level),
        )
        # The workers' imports (seconds) run beside the checks below.
        supervisor.start_forkserver()
    unreachable = _stock_database_problem()
    if unreachable is not None:
        # Workers would only die on it one after another: say why once and stop.
        logging.getLogger("promise.cli").error(unreachable)
        return 1
    if snapshot_path is None:
        _announce_development_key(data_dir)
    if supervisor is not None:
        return supervisor.run()
    log_config = uvicorn_log_config(settings.log_level)
    uvicorn.run(
        "promise.app:serve_app",
        factory=True,
        http=BoundedHttpToolsProtocol,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def _announce_development_key(data_dir: Path) -> None:
    """On the demo network, print the local development key (made on first use)."""
    from promise.access.cli import DEV_KEY_FILE, development_key  # noqa: PLC0415
    from promise.stock.config import StockSettings  # noqa: PLC0415
    from promise.stock.connect import open_backend  # noqa: PLC0415

    backend = open_backend(StockSettings.from_env(data_dir=data_dir))
    try:
        key = development_key(backend, data_dir)
    finally:
        backend.close()
    sys.stderr.write(
        f"development API key (every role; demo network only): {key}\n"
        f"  kept in {data_dir / DEV_KEY_FILE}; send it as 'Authorization: Bearer <key>'\n"
    )


def _stock_database_problem() -> str | None:
    """Why the configured stock database cannot serve (None when it can, or is unset)."""
    from promise.stock.config import StockSettings  # noqa: PLC0415 - light, but only for serve
    from promise.stock.pg_pool import database_problem  # noqa: PLC0415

    return database_problem(StockSettings.from_env())


def _demo(args: argparse.Namespace) -> int:
    """Promise a sample cart on the demo network and print request and answer as JSON."""
    import scenarios  # noqa: PLC0415 - heavy imports only for the commands that need them
    import solver  # noqa: PLC0415

    snapshot = scenarios.demo_snapshot()
    carts = scenarios.generate_carts(snapshot, count=50, seed=args.seed)
    request = next((c for c in carts if len(c.cart.lines) >= DEMO_MIN_LINES), carts[0])
    result = solver.solve(request, snapshot)
    out = {
        "snapshot_version": snapshot.version,
        "request": request.model_dump(mode="json", exclude_none=True),
        "answer": result.model_dump(mode="json"),
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


def _snapshot_export(args: argparse.Namespace) -> int:
    """Write the demo network's snapshot JSON to a file."""
    import scenarios  # noqa: PLC0415

    path: Path = args.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scenarios.demo_snapshot().model_dump_json(), encoding="utf-8")
    sys.stderr.write(f"wrote {path}\n")
    return 0


def _openapi(_args: argparse.Namespace) -> int:
    """Print the published OpenAPI document (regenerates tests/promise/openapi.json)."""
    from promise.openapi import published_json  # noqa: PLC0415 - imports the whole app

    sys.stdout.write(published_json())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``promise`` console script."""
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        code: int = handler(args)
        return code
    commands = {
        "serve": _serve,
        "demo": _demo,
        "snapshot-export": _snapshot_export,
        "openapi": _openapi,
    }
    try:
        return commands[args.command](args)
    except SettingsError as exc:
        sys.stderr.write(f"promise: invalid settings: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
