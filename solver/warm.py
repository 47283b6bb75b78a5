"""Warm-up: the first CP-SAT solve in a process is slow, so pay it at start-up."""

from __future__ import annotations

import datetime as dt

import holidays as holiday_library
from ortools.sat.python import cp_model

from solver.geo import load_postal_table

__all__ = ["load_tables", "warm_up"]


def load_tables() -> None:
    """Load the read-only tables the first solve would: postal codes and holiday calendars.

    Both are loaded on first use (a second or more between them); a process that forks its
    workers calls this first, so that each worker starts with them.
    """
    # The holiday library imports every country's module on the first calendar it builds.
    holiday_library.country_holidays("US", years=dt.datetime.now(dt.UTC).year)
    load_postal_table()


def warm_up() -> None:
    """Solve a tiny model with the production parameters so later solves start hot."""
    model = cp_model.CpModel()
    a = model.new_int_var(0, 10, "a")
    b = model.new_bool_var("b")
    model.add(a <= 10 * b)
    model.add(a >= 3)
    model.minimize(a + 5 * b)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.cp_model_presolve = False
    solver.parameters.max_time_in_seconds = 1.0
    if solver.solve(model) != cp_model.OPTIMAL:
        raise RuntimeError("CP-SAT warm-up model did not solve")
