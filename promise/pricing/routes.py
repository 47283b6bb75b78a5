"""HTTP endpoints of the opportunity-cost price table: thin handlers over :class:`PriceService`."""

from __future__ import annotations

from typing import Annotated

from litestar import Router, get, put
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter

from promise.access.principal import Principal, Scope
from promise.access.rules import secured
from promise.pricing.schemas import PricePage, PriceTableView, PriceUpload
from promise.pricing.service import PriceService
from promise.stock.routes import ID_PATTERN, problem_responses

__all__ = ["MAX_PAGE_ROWS", "prices_router"]

MAX_PAGE_ROWS = 1000
_DESCRIPTIONS = {
    409: "The table changed: since the page the cursor came from, or from the version the "
    "upload says it replaces (prices-moved).",
    422: "A field or parameter is invalid, or a row names a node or SKU the live network does "
    "not have, or a pair twice (see errors).",
}
QueryId = Annotated[str | None, Parameter(min_length=1, max_length=64, pattern=ID_PATTERN)]


@get(
    "/v1/prices",
    summary="The opportunity-cost price table",
    description=(
        "The current version of the price table the engine charges (cents per unit taken from "
        "a node, by SKU) and a page of its rows, in (sku, node_id) order, filtered to one SKU "
        "and/or one node. limit=0 answers the version alone."
    ),
    tags=["prices"],
    responses=problem_responses(409, 422, 503, descriptions=_DESCRIPTIONS),
    **secured(Scope.PROMISE, Scope.ADMIN, Scope.ANALYST),
)
async def get_prices(
    *,
    prices: NamedDependency[PriceService],
    sku: QueryId = None,
    node_id: QueryId = None,
    limit: Annotated[int, Parameter(ge=0, le=MAX_PAGE_ROWS)] = 100,
    cursor: Annotated[
        str | None,
        Parameter(
            min_length=1,
            max_length=512,
            pattern=r"^[A-Za-z0-9_\-]+$",
            description="next_cursor of the previous page.",
        ),
    ] = None,
) -> PricePage:
    """A page of the current price table."""
    return await prices.page(sku=sku, node_id=node_id, limit=limit, cursor=cursor)


@put(
    "/v1/prices",
    status_code=200,
    summary="Replace the price table",
    description=(
        "Writes a whole table as the next version, atomically and audited; every worker of "
        "every host charges it from its next promise on. Each row must name a node and SKU of "
        "the live network, each pair once; zero prices and pairs left out cost nothing."
    ),
    tags=["prices"],
    responses=problem_responses(400, 409, 413, 415, 422, 503, descriptions=_DESCRIPTIONS),
    **secured(Scope.ADMIN),
)
async def put_prices(
    data: JSONBody[PriceUpload],
    prices: NamedDependency[PriceService],
    principal: NamedDependency[Principal],
) -> PriceTableView:
    """Replace the price table (audited under the caller)."""
    return await prices.upload(data, principal)


def prices_router(service: PriceService, *, max_body_bytes: int) -> Router:
    """The price table endpoints with their ``prices`` dependency."""
    return Router(
        path="/",
        route_handlers=[get_prices, put_prices],
        dependencies={"prices": Provide(lambda: service, sync_to_thread=False)},
        request_max_body_size=max_body_bytes,
    )
