"""Synthetic networks, scenario store, replay and KPIs.

The replay, KPI and report functions live in their modules (``scenarios.replay.replay``,
``scenarios.kpis.kpis``, ``scenarios.report.report``): exporting them here would hide the
modules of the same name. The store is private modules (``_schema``, ``_codecs``,
``_records``, ``_store``) whose public names are exported here.

The names below are loaded on first use (``models.lazy``): importing one module of the package
(the migrations of the live stock store, the command line's parser) does not import the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

if TYPE_CHECKING:
    from scenarios._codecs import (
        inventory_lines,
        network_version,
        parse_inventory,
        scenario_snapshot,
    )
    from scenarios._records import (
        RunInfo,
        Scenario,
        ScenarioRecord,
        ScenarioRecorder,
        Selection,
    )
    from scenarios._schema import (
        MEMORY,
        MIGRATIONS,
        RESULT_COLUMNS,
        StoreError,
        migrate,
    )
    from scenarios._store import ScenarioStore
    from scenarios.carts import (
        CART_SIZE_PMF,
        MAX_CART_LINES,
        generate_carts,
        sku_popularity,
    )
    from scenarios.gate import (
        GateReport,
        regress,
    )
    from scenarios.geography import (
        CityTable,
        PostalCodes,
        postal_codes,
        us_cities,
    )
    from scenarios.golden import load_golden
    from scenarios.kpis import compare
    from scenarios.network import (
        DEFAULT_AS_OF,
        MAX_NODES,
        MAX_SKUS,
        MIN_NODES,
        MIN_SKUS,
        channel_policies,
        demo_snapshot,
        generate_network,
        node_counts,
    )
    from scenarios.policy import (
        DEFAULT_POLICY,
        Policy,
        load_policy,
        parse_policy,
    )


__all__ = [
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
]


# The TYPE_CHECKING imports above load on first use (models.lazy).
lazy_exports(__name__)
