"""Command line of the scenario store: replay, compare, regress, golden, scenarios, runs.

``register(subparsers)`` adds the commands to another parser (the ``promise`` command);
``main(argv)`` runs them on their own: ``python -m scenarios.cli regress``. Every handler is
stored as the ``handler`` default of its subparser and returns the exit status.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models import Engine, ServiceLevel

__all__ = ["build_parser", "main", "register"]

Handler = Callable[[argparse.Namespace], int]
_FORMATS = ("jsonl", "parquet", "duckdb")


def _instant(text: str) -> dt.datetime:
    """An ISO 8601 instant; one without a zone is taken as UTC."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _levels(text: str) -> tuple[ServiceLevel, ...]:
    """A comma-separated list of service levels."""
    return tuple(ServiceLevel(part.strip()) for part in text.split(",") if part.strip())


def _store_option(parser: argparse.ArgumentParser) -> None:
    """The --store option (default: $PROMISE_DATA_DIR/scenarios.duckdb, else data/)."""
    parser.add_argument(
        "--store", type=Path, metavar="PATH", help="scenario store file (default data/...)"
    )


def _selection_options(parser: argparse.ArgumentParser) -> None:
    """Options choosing scenarios: a tag and an order-instant range."""
    parser.add_argument("--tag", help="only scenarios with this tag")
    parser.add_argument("--since", type=_instant, help="orders at or after this ISO instant")
    parser.add_argument("--until", type=_instant, help="orders before this ISO instant")


def _engine_option(parser: argparse.ArgumentParser) -> None:
    """The --engine option."""
    parser.add_argument(
        "--engine", choices=[engine.value for engine in Engine], help="override the engine"
    )


def register(subparsers: Any) -> None:
    """Add the scenario commands to ``subparsers`` (from ``add_subparsers``)."""
    replay = subparsers.add_parser(
        "replay", help="replay stored scenarios under an engine and a policy, store the run"
    )
    replay.add_argument(
        "--suite", choices=["golden"], help="replay a committed suite (loaded into the store)"
    )
    _selection_options(replay)
    _engine_option(replay)
    replay.add_argument("--policy", type=Path, metavar="FILE.toml", help="policy file")
    replay.add_argument("--levels", type=_levels, help="quote these levels, e.g. ground")
    replay.add_argument(
        "--recorded", action="store_true", help="check the recorded decisions instead of solving"
    )
    replay.add_argument(
        "--time-budget-ms", type=int, help="solve budget (default: the policy's, else 50 ms)"
    )
    replay.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    replay.add_argument("--label", default="", help="a label for the run")
    replay.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    replay.add_argument(
        "--sequential",
        action="store_true",
        help="replay as one day: arrival order, stock, capacity and labour consumed",
    )
    replay.add_argument(
        "--pricing",
        choices=["none", "fixed", "repriced"],
        default="none",
        help="sequential: opportunity cost of stock priced once, or again every --every orders",
    )
    replay.add_argument("--every", type=int, default=50, help="sequential: orders per re-pricing")
    replay.add_argument(
        "--forecast-tag", help="sequential: forecast demand from the scenarios with this tag"
    )
    _store_option(replay)
    replay.set_defaults(handler=_replay)

    compare = subparsers.add_parser("compare", help="compare the KPIs of two runs")
    compare.add_argument("run_a", type=int, metavar="RUN_A")
    compare.add_argument("run_b", type=int, metavar="RUN_B")
    compare.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report here")
    compare.add_argument("--level", help="only options of this service level")
    _store_option(compare)
    compare.set_defaults(handler=_compare)

    regress = subparsers.add_parser(
        "regress", help="replay the golden suite; exit 1 when a KPI regressed against baseline"
    )
    regress.add_argument("--policy", type=Path, metavar="FILE.toml", help="policy file")
    _engine_option(regress)
    regress.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    regress.add_argument("--golden-dir", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    regress.set_defaults(handler=_regress)

    golden = subparsers.add_parser("golden", help="show or (deliberately) regenerate the suite")
    golden.add_argument(
        "--regenerate",
        action="store_true",
        help="rewrite the suite and its baseline KPIs (commit the result on purpose)",
    )
    golden.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    golden.add_argument("--golden-dir", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    golden.set_defaults(handler=_golden)

    scenarios = subparsers.add_parser("scenarios", help="import or export stored scenarios")
    actions = scenarios.add_subparsers(dest="scenarios_action", required=True)
    importer = actions.add_parser(
        "import", help="import JSONL, a Parquet directory or DuckDB capture files"
    )
    importer.add_argument("path", type=Path, metavar="PATH")
    importer.add_argument("--format", choices=_FORMATS, help="default: from the path")
    importer.add_argument("--tag", action="append", default=[], help="add a tag (repeatable)")
    _store_option(importer)
    importer.set_defaults(handler=_import)
    exporter = actions.add_parser("export", help="export scenarios as JSONL or Parquet")
    exporter.add_argument("path", type=Path, metavar="PATH")
    exporter.add_argument("--format", choices=_FORMATS[:2], required=True)
    _selection_options(exporter)
    _store_option(exporter)
    exporter.set_defaults(handler=_export)

    runs = subparsers.add_parser("runs", help="list the stored replay runs")
    _store_option(runs)
    runs.set_defaults(handler=_runs)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m scenarios.cli``."""
    parser = argparse.ArgumentParser(
        prog="python -m scenarios.cli",
        description="Scenario store: replay, compare, regression gate, golden suite.",
    )
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def _open(path: Path | None) -> Any:
    """The store at ``path`` (default location when None)."""
    from scenarios._store import ScenarioStore  # noqa: PLC0415 - keep --help fast

    return ScenarioStore(path)


def _print_kpis(values: dict[str, float]) -> None:
    """KPIs of one run, one per line."""
    from scenarios.report import format_value  # noqa: PLC0415

    for name, value in values.items():
        sys.stdout.write(f"  {name:<20} {format_value(name, value):>14}\n")


def _replay_day(args: argparse.Namespace, store: Any, selection: Any, policy: Any) -> int:
    """Replay the selection as one day and print the day's figures."""
    from models import Engine, ServiceLevel  # noqa: PLC0415
    from scenarios._records import Selection  # noqa: PLC0415
    from scenarios.day import DayPolicy  # noqa: PLC0415
    from scenarios.sequential import replay_sequential  # noqa: PLC0415

    levels = args.levels or (ServiceLevel.GROUND,)
    if len(levels) != 1:
        sys.stderr.write("a sequential replay answers every order at one level (--levels)\n")
        return 2
    engine = Engine(args.engine) if args.engine else (policy.engine if policy else Engine.MIP)
    day_policy = DayPolicy(
        name=f"{args.pricing}" if args.pricing != "none" else "myopic",
        engine=engine,
        pricing=args.pricing,
        every=args.every,
        time_budget_ms=args.time_budget_ms or 200,
    )
    forecast = Selection(tag=args.forecast_tag) if args.forecast_tag else None
    kwargs = {"policy": policy} if policy else {}
    run_id, day = replay_sequential(
        store,
        selection,
        day_policy=day_policy,
        level=levels[0],
        forecast=forecast,
        label=args.label,
        progress=not args.no_progress,
        **kwargs,
    )
    figures = day.as_dict()
    sys.stdout.write(f"run {run_id}: one day of {day.orders} orders ({day_policy.name})\n")
    for name in ("cost", "cost_per_order", "split_rate", "unfilled", "violations", "pricing_runs"):
        sys.stdout.write(f"  {name:<20} {figures[name]:>14}\n")
    return 0 if day.violations == 0 else 1


def _replay(args: argparse.Namespace) -> int:
    """Replay and print the run's KPIs."""
    from scenarios._records import Selection  # noqa: PLC0415
    from scenarios.golden import GOLDEN_TAG, load_golden  # noqa: PLC0415
    from scenarios.kpis import kpis  # noqa: PLC0415
    from scenarios.policy import load_policy  # noqa: PLC0415
    from scenarios.replay import prestart, replay  # noqa: PLC0415

    if args.workers is None or args.workers > 1:
        prestart()
    policy = load_policy(args.policy) if args.policy else None
    tag = args.tag
    with _open(args.store) as store:
        if args.suite == "golden":
            load_golden(store)
            tag = tag or GOLDEN_TAG
        selection = Selection(tag=tag, since=args.since, until=args.until)
        if args.sequential:
            return _replay_day(args, store, selection, policy)
        run_id = replay(
            store,
            selection,
            engine=args.engine,
            policy=policy,
            workers=args.workers,
            levels=args.levels,
            recorded=args.recorded,
            time_budget_ms=args.time_budget_ms,
            label=args.label,
            progress=not args.no_progress,
        )
        info = store.run(run_id)
        sys.stdout.write(
            f"run {run_id}: {info.scenario_count} scenarios, engine {info.engine}, policy "
            f"{info.policy_name} ({info.policy_hash}), {info.duration_s:.1f} s\n"
        )
        _print_kpis(kpis(store, run_id))
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Print the KPI comparison of two runs; optionally write the HTML report."""
    from scenarios.kpis import compare  # noqa: PLC0415
    from scenarios.report import format_kpis, report  # noqa: PLC0415

    with _open(args.store) as store:
        for run_id in (args.run_a, args.run_b):
            try:
                store.run(run_id)
            except KeyError:
                sys.stderr.write(f"no run {run_id} in {store.path}\n")
                return 2
        table = compare(store, args.run_a, args.run_b, level=args.level)
        header = ("kpi", f"run {args.run_a}", f"run {args.run_b}", "delta", "change")
        rows = [header, *format_kpis(table)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = [
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            sys.stdout.write("  ".join(cells) + "\n")
        if args.report is not None:
            path = report(store, args.run_a, args.run_b, args.report, level=args.level)
            sys.stdout.write(f"report: {path}\n")
    return 0


def _regress(args: argparse.Namespace) -> int:
    """Run the regression gate; 1 when a gated KPI regressed."""
    from scenarios.gate import regress  # noqa: PLC0415
    from scenarios.golden import GOLDEN_DIR  # noqa: PLC0415
    from scenarios.policy import load_policy  # noqa: PLC0415

    outcome = regress(
        engine=args.engine,
        policy=load_policy(args.policy) if args.policy else None,
        workers=args.workers,
        directory=args.golden_dir or GOLDEN_DIR,
    )
    sys.stdout.write(outcome.render() + "\n")
    return 0 if outcome.ok else 1


def _golden(args: argparse.Namespace) -> int:
    """Show the committed suite, or regenerate it when asked explicitly."""
    from scenarios.golden import GOLDEN_DIR, read_baseline, read_suite, regenerate  # noqa: PLC0415

    directory = args.golden_dir or GOLDEN_DIR
    if args.regenerate:
        baseline = regenerate(directory, workers=args.workers)
        sys.stdout.write(f"regenerated the golden suite in {directory}; new baseline KPIs:\n")
        _print_kpis(baseline["kpis"])
        return 0
    suite = read_suite(directory)
    baseline = read_baseline(directory)
    sys.stdout.write(
        f"golden suite: {suite.meta['scenarios']} scenarios on network "
        f"{suite.meta['network_version']}, levels {', '.join(suite.meta['levels'])}; baseline "
        f"from {baseline['code_version']} ({baseline['created']}):\n"
    )
    _print_kpis(baseline["kpis"])
    sys.stdout.write("regenerate only on purpose: --regenerate\n")
    return 0


def _format_of(path: Path, given: str | None) -> str:
    """The import format: given, else from the path."""
    if given is not None:
        return given
    if path.is_dir():
        return "parquet" if (path / "scenarios.parquet").exists() else "duckdb"
    if path.suffix == ".duckdb":
        return "duckdb"
    return "jsonl"


def _import(args: argparse.Namespace) -> int:
    """Import scenarios (a directory of capture files is merged file by file)."""
    path: Path = args.path
    kind = _format_of(path, args.format)
    tags = tuple(args.tag)
    with _open(args.store) as store:
        if kind == "jsonl":
            added = store.import_jsonl(path, tags=tags)
        elif kind == "parquet":
            added = store.import_parquet(path, tags=tags)
        else:
            files = sorted(path.glob("*.duckdb")) if path.is_dir() else [path]
            added = sum(store.import_store(file, tags=tags) for file in files)
        sys.stdout.write(f"imported {added} new scenarios into {store.path}\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    """Export the selected scenarios."""
    from scenarios._records import Selection  # noqa: PLC0415

    selection = Selection(tag=args.tag, since=args.since, until=args.until)
    with _open(args.store) as store:
        if args.format == "jsonl":
            count = store.export_jsonl(args.path, selection)
        else:
            count = store.export_parquet(args.path, selection)
    sys.stdout.write(f"exported {count} scenarios to {args.path}\n")
    return 0


def _runs(args: argparse.Namespace) -> int:
    """List the stored runs."""
    with _open(args.store) as store:
        frame = store.runs()
    if frame.empty:
        sys.stdout.write("no runs yet\n")
    else:
        sys.stdout.write(frame.to_string(index=False) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scenarios.cli``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
