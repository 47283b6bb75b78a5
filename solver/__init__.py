"""The promise engine: tiered ATP, delivery dates, the OR-Tools MIP, greedy baselines, checker.

Public surface: ``solve``, ``SolveParams``, ``availability``, ``Inventory`` (live stock),
``warm_up``, ``release`` (forget a retired snapshot), the errors of ``solver.errors`` and the
independent checker ``solver.checker``.
No OR-Tools object leaves this package.
"""

from solver.availability import availability
from solver.errors import (
    InvalidRequestError,
    ProblemError,
    PromiseError,
    UnknownChannelError,
    UnknownPostalCodeError,
)
from solver.index import release
from solver.inventory import Inventory
from solver.solve import SolveParams, solve
from solver.warm import warm_up

__all__ = [
    "InvalidRequestError",
    "Inventory",
    "ProblemError",
    "PromiseError",
    "SolveParams",
    "UnknownChannelError",
    "UnknownPostalCodeError",
    "availability",
    "release",
    "solve",
    "warm_up",
]
