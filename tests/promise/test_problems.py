"""The problem catalogue: each kind's own URN, status and title, one table, one handler.

Every kind is answered by the app's one exception handler exactly as it declares itself and as
docs/problems.md lists it; 422 field paths come from the validation errors themselves, so a
rewording of Litestar's messages changes none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from litestar import Litestar, get
from litestar.exceptions import ValidationException
from litestar.params import Parameter
from litestar.testing import TestClient

import promise.app  # noqa: F401 - imports every module that defines a kind
from promise.access.guard import AccessDeniedError, NotAuthenticatedError, RateLimitedError
from promise.access.routes import InvalidInstantError, KeyNotFoundError
from promise.errors import (
    InternalError,
    InvalidDestinationError,
    NotReadyError,
    OverloadedError,
    RequestLimitError,
    ServiceUnavailableError,
    SnapshotRejectedError,
    ValidationFailedError,
)
from promise.problems import problem_handler
from promise.stock.errors import (
    EventNotFoundError,
    HoldLimitError,
    IdempotencyKeyReusedError,
    InsufficientStockError,
    InvalidCursorError,
    InvalidPriceTableError,
    PricesMovedError,
    ReservationConflictError,
    ReservationNotFoundError,
    SnapshotMovedError,
    StockHTTPError,
    StockRequestError,
    StockUnavailableError,
    UnknownPromiseError,
    UnknownRowError,
)
from promise.stock.schemas import Shortfall
from solver.costs import MarginFloorRangeError, ObjectiveRangeError
from solver.errors import (
    PROBLEM_TYPE_PREFIX,
    InvalidRequestError,
    ProblemError,
    PromiseError,
    UnknownChannelError,
    UnknownPostalCodeError,
)
from tests.promise.promise_helpers import problem_of, tiny_body

DOCS = Path(__file__).parents[2] / "docs" / "problems.md"
# A row of the catalogue table: | `type` | status | title | `class` | when |
ROW = re.compile(
    r"^\| `(?P<type>urn:[^`]+)` \| (?P<status>\d+) \| (?P<title>[^|]+?) \| `(?P<cls>[\w.]+)` \|"
)

# One instance of every kind, as the code raises it (a new kind needs a row here).
EXAMPLES: dict[type[ProblemError], Callable[[], ProblemError]] = {
    # The solver's.
    UnknownPostalCodeError: lambda: UnknownPostalCodeError("00000", "US"),
    UnknownChannelError: lambda: UnknownChannelError("kiosk"),
    InvalidRequestError: lambda: InvalidRequestError(
        "requested_at out of range", ("requested_at",)
    ),
    ObjectiveRangeError: lambda: ObjectiveRangeError("split_penalty", 2**60),
    MarginFloorRangeError: lambda: MarginFloorRangeError(12.345, 2**60, from_policy=False),
    # The service's.
    RequestLimitError: lambda: RequestLimitError("too many lines", ("cart", "lines")),
    SnapshotRejectedError: lambda: SnapshotRejectedError("the engine fails on it"),
    InvalidDestinationError: lambda: InvalidDestinationError("not a postal code"),
    ValidationFailedError: lambda: ValidationFailedError((), 0),
    ServiceUnavailableError: lambda: ServiceUnavailableError("another upload", 1),
    NotReadyError: lambda: NotReadyError("warming up", 2),
    OverloadedError: lambda: OverloadedError("every slot taken", 3),
    InternalError: InternalError,
    # Access.
    NotAuthenticatedError: lambda: NotAuthenticatedError("unknown API key", invalid=True),
    AccessDeniedError: lambda: AccessDeniedError("this route needs the admin role"),
    RateLimitedError: lambda: RateLimitedError("over the rate", retry_after_s=4),
    KeyNotFoundError: lambda: KeyNotFoundError("0123456789abcdef"),
    InvalidInstantError: lambda: InvalidInstantError("since must be an instant"),
    # Stock.
    StockRequestError: lambda: StockRequestError("unknown SKU 'X'", ("lines", 0, "sku")),
    UnknownPromiseError: lambda: UnknownPromiseError("promise again"),
    IdempotencyKeyReusedError: lambda: IdempotencyKeyReusedError("k1"),
    UnknownRowError: lambda: UnknownRowError("unknown node 'X'", ("node_id",)),
    InvalidCursorError: lambda: InvalidCursorError("not a cursor of this service", ("cursor",)),
    InvalidPriceTableError: lambda: InvalidPriceTableError(
        "unknown node 'X' in the live network", ("rows", 0, "node_id")
    ),
    PricesMovedError: lambda: PricesMovedError(3, 4),
    EventNotFoundError: lambda: EventNotFoundError("e1"),
    ReservationNotFoundError: lambda: ReservationNotFoundError("r1"),
    ReservationConflictError: lambda: ReservationConflictError("r1 is released"),
    InsufficientStockError: lambda: InsufficientStockError(
        [Shortfall(node_id="CHI", sku="S1", requested=3, available=1)]
    ),
    HoldLimitError: lambda: HoldLimitError("over the held-unit limit"),
    StockUnavailableError: lambda: StockUnavailableError("the stock database is locked", 1),
    SnapshotMovedError: lambda: SnapshotMovedError(1, 2),
}
# Kinds whose answer carries a header: a challenge (401) or when to retry (429, every 503).
WITH_HEADERS = (NotAuthenticatedError, RateLimitedError, ServiceUnavailableError)


def _subclasses(cls: type[ProblemError]) -> Iterator[type[ProblemError]]:
    """Every subclass of ``cls``, at any depth."""
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _kinds() -> list[type[ProblemError]]:
    """Every kind the app defines: a class that declares its own type (families do not)."""
    # The classes the tests below define (and the base refuses) are not the app's.
    ours = ("solver.", "promise.")
    return [
        cls
        for cls in _subclasses(ProblemError)
        if "type" in vars(cls) and cls.__module__.startswith(ours)
    ]


def _docs_rows() -> dict[str, tuple[int, str, str]]:
    """The catalogue table of docs/problems.md: type -> (status, title, class)."""
    rows: dict[str, tuple[int, str, str]] = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match is not None:
            assert match["type"] not in rows, f"{match['type']} has two rows"
            rows[match["type"]] = (int(match["status"]), match["title"], match["cls"])
    return rows


@pytest.fixture(scope="module")
def raising_client() -> Iterator[TestClient[Litestar]]:
    """A client of an app whose one route raises the example of the kind it names."""
    by_name = {kind.__name__: make for kind, make in EXAMPLES.items()}

    @get("/raise/{name:str}", sync_to_thread=False)
    def raise_example(name: Annotated[str, Parameter(min_length=1)]) -> None:
        """Raise the example of the kind called ``name``."""
        raise by_name[name]()

    app = Litestar(
        route_handlers=[raise_example],
        exception_handlers={Exception: problem_handler},
        logging_config=None,
    )
    with TestClient(app) as client:
        yield client


def test_every_kind_has_its_own_urn() -> None:
    """No two kinds share a type URN; each is one of ours, with an error status and a title."""
    kinds = _kinds()
    types = [kind.type for kind in kinds]
    assert len(set(types)) == len(types), sorted(types)
    for kind in kinds:
        assert kind.type.startswith(PROBLEM_TYPE_PREFIX), kind
        assert 400 <= kind.status <= 599, kind
        assert kind.title.strip(), kind


def test_every_kind_is_in_the_docs_table() -> None:
    """docs/problems.md lists every kind with its URN, status, title and class, and no other."""
    rows = _docs_rows()
    listed = {
        kind.type: (kind.status, kind.title, f"{kind.__module__}.{kind.__qualname__}")
        for kind in _kinds()
    }
    assert rows == listed


def test_every_kind_has_an_example() -> None:
    """The examples cover every kind, so the handler test below answers each of them."""
    assert set(EXAMPLES) == set(_kinds())


@pytest.mark.parametrize("kind", list(EXAMPLES), ids=lambda kind: kind.__name__)
def test_the_one_handler_answers_every_kind_as_declared(
    raising_client: TestClient[Litestar], kind: type[ProblemError]
) -> None:
    """Status, type, title and detail are the kind's; its field and headers come along."""
    example = EXAMPLES[kind]()
    response = raising_client.get(f"/raise/{kind.__name__}")
    problem = problem_of(response, kind.status)
    assert (problem["type"], problem["title"], problem["status"]) == (
        kind.type,
        kind.title,
        kind.status,
    )
    assert problem["detail"] == example.message
    fields = [(error["loc"], error["source"]) for error in problem["errors"]]
    expected = [] if not example.field else [(list(example.field), example.source)]
    assert fields == expected
    # The stock documents carry the refused hold's shortfalls (empty but for that 409).
    assert ("shortfalls" in problem) == isinstance(example, StockHTTPError)
    assert bool(example.headers) == isinstance(example, WITH_HEADERS)
    for name, value in example.headers.items():
        assert response.headers[name] == value


def test_a_kind_declares_type_status_and_title_itself() -> None:
    """A kind missing one of the three, or a family declaring one, is refused at definition."""
    with pytest.raises(TypeError, match="must declare its own"):

        class UntitledError(ProblemError):  # a kind without a title
            type = PROBLEM_TYPE_PREFIX + "untitled"
            status = 422

    with pytest.raises(TypeError, match="must declare its own"):

        class InheritedError(InvalidRequestError):  # would answer with its parent's URN
            """A subclass that declares nothing."""

    with pytest.raises(TypeError, match="only kinds do"):

        class TypedError(PromiseError, family=True):  # a family that names a type
            type = PROBLEM_TYPE_PREFIX + "typed"


def test_a_family_is_never_raised() -> None:
    """Instantiating a family is a TypeError: only kinds have a document to answer with."""
    with pytest.raises(TypeError, match="family"):
        PromiseError("which kind?")


# --- field paths of 422 answers -------------------------------------------------------------


def _reworded(original: Callable[..., None]) -> Callable[..., None]:
    """ValidationException.__init__ that drops Litestar's wording for a made-up one."""

    def init(self: ValidationException, *_args: Any, **kwargs: Any) -> None:
        kwargs.pop("detail", None)
        original(self, "Überprüfung fehlgeschlagen", **kwargs)

    return init


def test_field_paths_do_not_depend_on_litestars_wording(
    app_client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every Litestar validation message reworded, each 422 still names its fields."""
    monkeypatch.setattr(ValidationException, "__init__", _reworded(ValidationException.__init__))
    missing_sku = problem_of(app_client.get("/v1/availability"), 422)
    missing_key = problem_of(
        app_client.post(
            "/v1/reservations",
            json={"channel": "web", "lines": [{"node_id": "CHI", "sku": "S", "quantity": 1}]},
        ),
        422,
    )
    long_country = problem_of(app_client.get("/v1/availability?sku=S&country=USA"), 422)
    body = tiny_body()
    body["destination"]["floor"] = 3
    bad_body = problem_of(app_client.post("/v1/promise", json=body), 422)
    located = [
        [(e["loc"], e["source"], e["type"]) for e in problem["errors"]]
        for problem in (missing_sku, missing_key, long_country, bad_body)
    ]
    assert located == [
        [(["sku"], "query", "missing")],
        [(["Idempotency-Key"], "header", "missing")],
        [(["country"], "query", "invalid")],
        [(["destination", "floor"], "body", "extra_forbidden")],
    ]
    assert {p["type"] for p in (missing_sku, missing_key, long_country, bad_body)} == {
        PROBLEM_TYPE_PREFIX + "validation-failed"
    }


def test_parameters_are_named_as_the_client_sends_them(app_client: TestClient[Litestar]) -> None:
    """An invalid header or aliased query parameter is named by its wire name, not Python's."""
    bad_key = app_client.post("/v1/promise", json=tiny_body(), headers={"Idempotency-Key": "a b"})
    long_principal = app_client.get("/v1/audit", params={"principal": "p" * 81})
    unknown_channel = app_client.get("/v1/availability", params={"sku": "S", "channel": "kiosk"})
    named = [
        [(e["field"], e["source"]) for e in problem_of(answer, 422)["errors"]]
        for answer in (bad_key, long_principal, unknown_channel)
    ]
    assert named == [
        [("Idempotency-Key", "header")],
        [("principal", "query")],
        # A domain error about a query parameter names the parameter, not the body's field.
        [("channel", "query")],
    ]
