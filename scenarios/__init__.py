"""Synthetic networks, scenario store, replay and KPIs."""

from scenarios.carts import CART_SIZE_PMF, MAX_CART_LINES, generate_carts, sku_popularity
from scenarios.geography import CityTable, PostalCodes, postal_codes, us_cities
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

__all__ = [
    "CART_SIZE_PMF",
    "DEFAULT_AS_OF",
    "MAX_CART_LINES",
    "MAX_NODES",
    "MAX_SKUS",
    "MIN_NODES",
    "MIN_SKUS",
    "CityTable",
    "PostalCodes",
    "channel_policies",
    "demo_snapshot",
    "generate_carts",
    "generate_network",
    "node_counts",
    "postal_codes",
    "sku_popularity",
    "us_cities",
]
