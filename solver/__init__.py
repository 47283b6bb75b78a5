"""The promise engine: tiered ATP, delivery dates, the OR-Tools MIP, greedy baselines, checker.

Public surface: ``prepare`` (a snapshot → an immutable ``PreparedNetwork``: its arrays,
lookups, holiday calendar and calendar memo), ``PreparedNetwork.with_inventory`` (the same
network with a live ``Inventory`` version), ``solve`` and ``availability`` on a prepared network
(a bare snapshot is prepared for one call), ``SolveParams``, ``warm_up`` and ``load_tables``,
the errors of ``solver.errors`` and the independent checker ``solver.checker``.

Nothing is cached at module level: what a solve reuses lives in the prepared network its
caller keeps. No OR-Tools object leaves this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

if TYPE_CHECKING:
    from solver.availability import availability
    from solver.errors import (
        InvalidRequestError,
        ProblemError,
        PromiseError,
        UnknownChannelError,
        UnknownPostalCodeError,
    )
    from solver.inventory import Inventory
    from solver.prepared import PreparedNetwork, prepare
    from solver.solve import SolveParams, solve
    from solver.warm import load_tables, warm_up

__all__ = [
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
]

# The TYPE_CHECKING imports above load on first use (models.lazy).
lazy_exports(__name__)
