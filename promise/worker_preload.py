"""Imported once by the process the workers fork from: the app and the solver's tables.

``promise serve`` starts its workers from a forkserver that imports this module first. Each
worker then begins as a copy of a process that already holds the app's modules (a few seconds
of imports on two cores) and the postal-code and holiday tables (about a second more on the
first solve), instead of importing and loading them itself; a worker restarted after a crash
is back as quickly. Nothing here opens a file, a socket or a thread, so forking it is safe.
"""

from __future__ import annotations

import importlib

import solver

__all__ = ["MODULES", "preload"]

# What a worker runs: the app factory and what it imports when called, and the worker entry.
MODULES = ("promise.app", "promise.logs", "promise.stock.pg_pool", "promise.supervisor")


def preload() -> None:
    """Import the worker's modules and load the solver's tables."""
    for name in MODULES:
        importlib.import_module(name)
    solver.load_tables()


preload()
