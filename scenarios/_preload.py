"""Imported by the replay pool's fork server, once, before it forks any worker.

Importing it loads what every replay worker needs and can share copy-on-write: the solver and
the replay code, a warmed CP-SAT and the offline postal-code table (about half a second to
load), then freezes the heap. Workers forked afterwards start solving at once. Nothing else
imports this module.
"""

from __future__ import annotations

import gc

import scenarios.replay  # noqa: F401 - the workers' code, imported here once for all of them
from models import Destination
from solver import warm_up
from solver.geo import resolve_destination

__all__: list[str] = []

warm_up()
resolve_destination(Destination(postal_code="10001"))
# Everything loaded so far lives as long as the workers: collect once here, where it is paid a
# single time, and keep it out of the workers' full collections.
gc.collect()
gc.freeze()
