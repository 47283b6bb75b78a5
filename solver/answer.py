"""Turn an allocation into the option checkout sees: shipments, costs, reasons, status."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from models import (
    CostBreakdown,
    PromiseOption,
    Shipment,
    ShipmentLine,
    Status,
    Unfulfilled,
    UnfulfilledReason,
)
from solver.costs import Coefficients, Evaluation, evaluate
from solver.problem import Problem

__all__ = ["build_option", "empty_option"]

IntArray = npt.NDArray[np.int64]


def _reason(problem: Problem, line_pos: int, evaluation: Evaluation) -> UnfulfilledReason:
    """The most likely reason units of a line stayed unfilled."""
    ctx = problem.ctx
    line = ctx.lines[line_pos]
    if line.sku_index < 0:
        return UnfulfilledReason.UNKNOWN_SKU
    wanted = int(ctx.sku_need[line_pos])
    network = int(ctx.stock_last[:, line_pos].sum())
    if network < wanted:
        return UnfulfilledReason.INSUFFICIENT_STOCK
    if not problem.avail[line_pos].any():
        return UnfulfilledReason.NO_SERVICE
    if evaluation.used.size >= ctx.max_shipments:
        return UnfulfilledReason.MAX_SHIPMENTS
    if ctx.margin_floor is not None:
        return UnfulfilledReason.MARGIN_FLOOR
    return UnfulfilledReason.CAPACITY


def _shipments(problem: Problem, x: IntArray, evaluation: Evaluation) -> tuple[Shipment, ...]:
    """One shipment per used slot, with its lines and cost."""
    ctx = problem.ctx
    nodes = ctx.index.nodes
    out: list[Shipment] = []
    for j in evaluation.used.tolist():
        node = nodes[int(problem.slot_node[j])]
        service = problem.slot_service[j]
        lines = tuple(
            ShipmentLine(line_id=line.line.line_id, sku=line.line.sku, quantity=int(x[i, j]))
            for i, line in enumerate(ctx.lines)
            if x[i, j] > 0
        )
        units = int(x[:, j].sum())
        grams = sum(ctx.lines[i].weight_g * int(x[i, j]) for i in range(len(ctx.lines)))
        shipping = int(problem.slot_base[j] + problem.slot_per_kg[j] * evaluation.billable_kg[j])
        labour = node.pick_cost * units
        out.append(
            Shipment(
                node_id=node.node_id,
                carrier_service_id=service.service_id,
                ship_date=dt.date.fromordinal(int(problem.slot_date[j])),
                delivery_date=dt.date.fromordinal(int(problem.slot_delivery[j])),
                zone=int(problem.slot_zone[j]),
                distance_km=round(float(ctx.distance_km[int(problem.slot_node[j])]), 3),
                weight_kg=grams / 1000.0,
                lines=lines,
                cost=CostBreakdown(
                    shipping=shipping,
                    handling=node.handling_cost,
                    labour=labour,
                    total=shipping + node.handling_cost + labour,
                ),
            )
        )
    out.sort(key=lambda s: (s.delivery_date, s.node_id))
    return tuple(out)


def _explain(problem: Problem, shipments: tuple[Shipment, ...], status: Status) -> str:
    """A short sentence for humans."""
    if not shipments:
        return "No shipment could be promised for this service level."
    nodes = ", ".join(sorted({s.node_id for s in shipments}))
    split = "one package" if len(shipments) == 1 else f"{len(shipments)} packages"
    latest = max(s.delivery_date for s in shipments)
    how = {
        Status.OPTIMAL: "proven cheapest",
        Status.FEASIBLE: "best found in the time budget",
        Status.FALLBACK: "greedy fallback (solver time ran out)",
        Status.PARTIAL: "partial fill",
    }.get(status, status.value)
    return f"{split} from {nodes}, arriving by {latest.isoformat()} ({how})."


def build_option(
    problem: Problem, x: IntArray, coef: Coefficients, status: Status, *, note: str = ""
) -> PromiseOption:
    """The option for allocation ``x``; unfilled units make it partial or unfulfillable.

    ``status`` is how ``x`` was found: OPTIMAL (proven), FEASIBLE or FALLBACK; the option
    keeps whether it is proven when unfilled units turn it partial or unfulfillable. ``note``
    is appended to the explanation of a shipping option.
    """
    ctx = problem.ctx
    proven = status is Status.OPTIMAL
    evaluation = evaluate(problem, x, coef)
    unfilled = tuple(
        Unfulfilled(
            line_id=line.line.line_id,
            sku=line.line.sku,
            quantity=int(evaluation.unfilled[i]),
            reason=_reason(problem, i, evaluation),
        )
        for i, line in enumerate(ctx.lines)
        if evaluation.unfilled[i] > 0
    )
    fallback = status is Status.FALLBACK
    if unfilled and not ctx.request.allow_partial:
        refused = empty_option(problem, unfilled, proven=proven)
        if fallback:
            note = " Time ran out before the model could search for a complete answer."
            refused = refused.model_copy(
                update={"fallback": True, "explanation": refused.explanation + note}
            )
        return refused
    if unfilled:
        status = Status.PARTIAL
    shipments = _shipments(problem, x, evaluation)
    shipping = sum(s.cost.shipping for s in shipments)
    handling = sum(s.cost.handling for s in shipments)
    labour = sum(s.cost.labour for s in shipments)
    return PromiseOption(
        service_level=problem.level,
        status=status,
        promised_delivery_date=max((s.delivery_date for s in shipments), default=None),
        shipments=shipments,
        unfulfilled=unfilled,
        cost=CostBreakdown(
            shipping=shipping, handling=handling, labour=labour, total=shipping + handling + labour
        ),
        revenue=evaluation.revenue,
        margin=evaluation.margin,
        split_count=max(0, len(shipments) - 1),
        objective=evaluation.objective,
        opportunity_cost=evaluation.opportunity,
        fallback=fallback,
        proven=proven,
        explanation=_explain(problem, shipments, status) + note,
    )


def empty_option(
    problem: Problem, unfilled: tuple[Unfulfilled, ...], *, proven: bool
) -> PromiseOption:
    """An unfulfillable option: nothing ships, the unfilled lines say why.

    Its objective is the contract's cost of shipping nothing, with the weights' own unfilled
    cost (not the solver's internal one for complete-answer requests).
    """
    units = sum(line.line.quantity for line in problem.ctx.lines)
    reasons = sorted({u.reason.value for u in unfilled})
    return PromiseOption(
        service_level=problem.level,
        status=Status.UNFULFILLABLE,
        promised_delivery_date=None,
        unfulfilled=unfilled,
        objective=problem.ctx.weights.unfilled_per_unit * units,
        proven=proven,
        explanation=f"Cannot promise the whole cart at this level ({', '.join(reasons)}).",
    )
