"""Synthetic networks, scenario store, replay and KPIs.

The replay, KPI and report functions live in their modules (``scenarios.replay.replay``,
``scenarios.kpis.kpis``, ``scenarios.report.report``): exporting them here would hide the
modules of the same name.
"""

from scenarios.carts import CART_SIZE_PMF, MAX_CART_LINES, generate_carts, sku_popularity
from scenarios.gate import GateReport, regress
from scenarios.geography import CityTable, PostalCodes, postal_codes, us_cities
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
from scenarios.policy import DEFAULT_POLICY, Policy, load_policy, parse_policy
from scenarios.store import RunInfo, Scenario, ScenarioStore, Selection, StoreError

__all__ = [
    "CART_SIZE_PMF",
    "DEFAULT_AS_OF",
    "DEFAULT_POLICY",
    "MAX_CART_LINES",
    "MAX_NODES",
    "MAX_SKUS",
    "MIN_NODES",
    "MIN_SKUS",
    "CityTable",
    "GateReport",
    "Policy",
    "PostalCodes",
    "RunInfo",
    "Scenario",
    "ScenarioStore",
    "Selection",
    "StoreError",
    "channel_policies",
    "compare",
    "demo_snapshot",
    "generate_carts",
    "generate_network",
    "load_golden",
    "load_policy",
    "node_counts",
    "parse_policy",
    "postal_codes",
    "regress",
    "sku_popularity",
    "us_cities",
]
