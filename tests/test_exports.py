"""Each package's public names, and what the runtime packages may not contain.

The lists below are committed on purpose: adding, renaming or dropping an export is then a
visible diff in review, not a side effect of an edit elsewhere.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUNTIME_PACKAGES = ("models", "solver", "scenarios", "promise")
ROOT = Path(__file__).resolve().parents[1]
# Test tools and the test package: none of them may be imported by code that ships.
TEST_ONLY = ("tests", "pytest", "hypothesis", "schemathesis", "locust")
# Packages whose exports load on first use (models.lazy).
LAZY_PACKAGES = ("scenarios", "solver", "promise.stock")
# What the command line's parser and a key's creation must not import (seconds on two cores).
HEAVY_MODULES = ("ortools", "duckdb", "scipy", "pandas", "litestar")

EXPORTS: dict[str, tuple[str, ...]] = {
    "models": (
        "EARLIEST_DATE",
        "LATEST_DATE",
        "MAX_DATED_ENTRIES",
        "MAX_LINE_QUANTITY",
        "MAX_NODES",
        "MAX_PRICE_CENTS",
        "NO_PRICES",
        "ZONE_COUNT",
        "AvailabilityReport",
        "BooleanOnly",
        "Buffer",
        "CarrierService",
        "Cart",
        "CartLine",
        "CatalogItem",
        "ChannelPolicy",
        "CostBreakdown",
        "Day",
        "Destination",
        "Engine",
        "Entries",
        "FieldError",
        "FieldPath",
        "FieldSource",
        "Frozen",
        "InTransitLot",
        "Instant",
        "IntegerOnly",
        "InventoryPosition",
        "InventoryTable",
        "Location",
        "Many",
        "Node",
        "NodeAvailability",
        "NodeKind",
        "ObjectiveWeights",
        "Percent",
        "Problem",
        "PromiseOption",
        "PromiseRequest",
        "PromiseResult",
        "ServiceLevel",
        "Share",
        "Shipment",
        "ShipmentLine",
        "SkuAvailability",
        "Snapshot",
        "SolverStats",
        "Status",
        "StockPrices",
        "Tiers",
        "Unfulfilled",
        "UnfulfilledReason",
        "WeightOverrides",
        "ZoneRate",
        "at_most",
        "ceil_percent",
        "ceil_percent_array",
        "floor_share",
        "floor_share_array",
        "margin_floor_scale",
        "meets_margin_floor",
        "scale_cents",
        "scale_cents_array",
    ),
    "solver": (
        "InvalidRequestError",
        "Inventory",
        "PreparedNetwork",
        "ProblemError",
        "PromiseError",
        "SolveParams",
        "UnknownChannelError",
        "UnknownPostalCodeError",
        "availability",
        "load_tables",
        "prepare",
        "solve",
        "warm_up",
    ),
    "scenarios": (
        "CART_SIZE_PMF",
        "DEFAULT_AS_OF",
        "DEFAULT_POLICY",
        "MAX_CART_LINES",
        "MAX_NODES",
        "MAX_SKUS",
        "MEMORY",
        "MIGRATIONS",
        "MIN_NODES",
        "MIN_SKUS",
        "RESULT_COLUMNS",
        "CityTable",
        "GateReport",
        "Policy",
        "PostalCodes",
        "RunInfo",
        "Scenario",
        "ScenarioRecord",
        "ScenarioRecorder",
        "ScenarioStore",
        "Selection",
        "StoreError",
        "channel_policies",
        "compare",
        "demo_snapshot",
        "generate_carts",
        "generate_network",
        "inventory_lines",
        "load_golden",
        "load_policy",
        "migrate",
        "network_version",
        "node_counts",
        "parse_inventory",
        "parse_policy",
        "postal_codes",
        "regress",
        "scenario_snapshot",
        "sku_popularity",
        "us_cities",
    ),
    "promise": (
        "Settings",
        "create_app",
    ),
    "promise.access": (),
    "promise.events": (),
    "promise.pricing": (),
    "promise.stock": (
        "EventBatch",
        "EventNotFoundError",
        "EventOutcome",
        "EventResult",
        "EventType",
        "EventsAnswer",
        "IdempotencyKeyReusedError",
        "InsufficientStockError",
        "InvalidPriceTableError",
        "InventoryEvent",
        "PricesMovedError",
        "PromiseHold",
        "Reservation",
        "ReservationConflictError",
        "ReservationLine",
        "ReservationNotFoundError",
        "ReservationRequest",
        "ReservationStatus",
        "Shortfall",
        "StockHTTPError",
        "StockPosition",
        "StockRequestError",
        "StockService",
        "StockSettings",
        "StockUnavailableError",
        "UnknownPromiseError",
        "UnknownRowError",
        "open_backend",
        "stock_router",
    ),
}


def _runtime_modules() -> list[ModuleType]:
    """Every module of the runtime packages, imported."""
    modules: list[ModuleType] = []
    for name in RUNTIME_PACKAGES:
        package = importlib.import_module(name)
        modules.append(package)
        prefix = f"{name}."
        modules += [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix)
        ]
    return modules


@pytest.mark.parametrize("package", list(EXPORTS))
def test_package_exports_are_the_committed_list(package: str) -> None:
    """A package's ``__all__`` is exactly the list committed here, in order."""
    assert tuple(importlib.import_module(package).__all__) == EXPORTS[package]


def test_every_package_is_listed() -> None:
    """No runtime package escapes the committed lists."""
    packages = {m.__name__ for m in _runtime_modules() if hasattr(m, "__path__")}
    assert packages == set(EXPORTS)


def test_every_runtime_module_declares_names_that_exist() -> None:
    """Each module has an ``__all__``, and every name in it is defined there."""
    for module in _runtime_modules():
        names = getattr(module, "__all__", None)
        assert names is not None, f"{module.__name__} has no __all__"
        missing = [name for name in names if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ names undefined {missing}"


def test_runtime_packages_import_no_test_code() -> None:
    """Code that ships imports nothing from tests/ nor any test tool."""
    offenders: list[str] = []
    for package in RUNTIME_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module]
                else:
                    continue
                offenders += [
                    f"{path.relative_to(ROOT)}: {target}"
                    for target in targets
                    if target.split(".")[0] in TEST_ONLY
                ]
    assert offenders == []


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_a_lazy_package_loads_exactly_its_exports(package: str) -> None:
    """Its table of home modules names exactly ``__all__``; any other name is an error."""
    module = importlib.import_module(package)
    assert dir(module) == sorted(module.__all__)
    with pytest.raises(AttributeError, match="no_such_export"):
        getattr(module, "no_such_export")  # noqa: B009 - the lookup under test


def test_the_command_line_and_the_key_store_start_without_the_solver() -> None:
    """``promise`` parses its arguments and opens the key store without the heavy libraries."""
    code = (
        "import sys; import promise.cli, promise.access.cli, promise.stock.connect; "
        "promise.cli.build_parser(); "
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == ""


def test_an_export_named_like_its_module_survives_the_modules_import() -> None:
    """``solver.solve`` is the function even once the ``solver.solve`` module is imported."""
    code = (
        "import solver; import solver.solve as via_import; from solver.solve import solve; "
        "from solver import availability; import solver.availability; "
        "print(solver.solve is solve, via_import is solve, "
        "solver.availability is availability, callable(availability))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["True"] * 4
