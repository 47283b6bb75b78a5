"""Sparse LP models for OR-Tools' LP and MIP solvers, and stock prices from their duals.

The pricing LPs and the joint plan's relaxation all hand OR-Tools a model as arrays: variable
bounds and costs, row bounds and a sparse matrix. Prices are the magnitudes of the duals of
``≤ stock`` rows in a minimisation (≤ 0 there), rounded to whole cents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import numpy.typing as npt
import scipy.sparse
from ortools.linear_solver.python import model_builder_helper as mbh

from models import MAX_PRICE_CENTS

__all__ = ["sparse_model", "stock_duals"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def sparse_model(
    columns: tuple[FloatArray, FloatArray, FloatArray],
    row_lo: FloatArray,
    row_hi: FloatArray,
    entries: tuple[IntArray, IntArray, FloatArray | None],
) -> mbh.ModelBuilderHelper:
    """A model of ``row_lo ≤ A x ≤ row_hi``, ``lower ≤ x ≤ upper``, minimising ``cost · x``.

    ``columns`` are (lower, upper, cost) per variable; ``entries`` are A's (rows, columns,
    values), values None meaning every entry is 1.
    """
    lower, upper, cost = columns
    rows, cols, values = entries
    matrix = scipy.sparse.csr_matrix(
        (np.ones(rows.size) if values is None else values, (rows, cols)),
        shape=(row_lo.size, lower.size),
        dtype=np.float64,
    )
    model = mbh.ModelBuilderHelper()
    # OR-Tools' stubs spell a float64 vector as ``ndarray[float64, ...]``, which numpy's own
    # types never match; the arrays are float64 vectors.
    fill = cast("Callable[..., None]", model.fill_model_from_sparse_data)
    fill(lower, upper, cost, row_lo, row_hi, matrix)
    return model


def stock_duals(
    model: mbh.ModelBuilderHelper, stock_rows: IntArray, *, parameters: str = ""
) -> tuple[IntArray | None, float, str]:
    """Solve ``model`` with GLOP: cents per stock row (None without one), objective, status."""
    solver = mbh.ModelSolverHelper("glop")
    if parameters:
        solver.set_solver_specific_parameters(parameters)
    solver.solve(model)
    status = str(solver.status().name)
    if not solver.has_solution():
        return None, 0.0, status
    duals = solver.dual_values()[stock_rows]
    # A stock row is "≤ A": its dual is ≤ 0 in a minimisation; the price is its magnitude.
    cents = np.clip(np.rint(-duals), 0, MAX_PRICE_CENTS).astype(np.int64)
    return cents, float(solver.objective_value()), status
