"""Service settings, read from ``PROMISE_*`` environment variables.

Every settings class (:class:`Settings` here, ``StockSettings`` and ``EventSettings`` beside
their packages) is an :class:`EnvSettings`: pydantic-settings reads ``PROMISE_<FIELD>`` when
:meth:`EnvSettings.from_env` is called at start-up, and a bad value fails there naming its
variable. Every worker process reads its settings from the environment, so the CLI passes its
options to uvicorn's workers by writing them back with :meth:`EnvSettings.to_env`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "DEFAULT_BODY_MEMORY_MIB",
    "ENV_PREFIX",
    "EnvSettings",
    "Settings",
    "SettingsError",
    "upper_case",
]

ENV_PREFIX = "PROMISE_"
MIB = 1024 * 1024
# The memory budget of the routes with ordinary bodies (promise.body_limits): an events batch of
# 5,000 (about 25 MiB by its bound), a cart, inline snapshots up to 4 MiB of JSON (125 MiB).
DEFAULT_BODY_MEMORY_MIB = 160


class SettingsError(ValueError):
    """An environment variable holds a value the settings reject."""


class _Environ(EnvSettingsSource):
    """The ``PROMISE_*`` variables of a given mapping (a child process's environment, a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        """Read ``environ`` instead of this process's environment."""
        super().__init__(settings_cls)
        # Looked up as the process environment is: names in any case, empty values unset.
        self.env_vars = {name.lower(): value for name, value in environ.items() if value != ""}


def _problems(exc: ValidationError) -> str:
    """Every rejected value, named by its variable."""
    return "; ".join(
        f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
    )


class EnvSettings(BaseSettings):
    """Settings of ``PROMISE_<FIELD>`` variables: frozen, unknown fields rejected.

    Built in code (a test, a tool), a settings object holds its arguments and defaults only,
    whatever the environment holds; :meth:`from_env` is where the environment is read.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, extra="forbid"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments only: :meth:`from_env` passes the environment's values as arguments."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Self:
        """Settings from non-None ``overrides``, then ``PROMISE_<FIELD>`` variables, then defaults.

        ``environ`` stands in for this process's environment. Every invalid value is named by
        its variable in one :class:`SettingsError`.
        """
        source = EnvSettingsSource(cls) if environ is None else _Environ(cls, environ)
        given = {name: value for name, value in overrides.items() if value is not None}
        try:
            return cls(**{**source(), **given})
        except ValidationError as exc:
            raise SettingsError(_problems(exc)) from exc

    def to_env(self) -> dict[str, str]:
        """The ``PROMISE_*`` variables that reproduce these settings in another process."""
        return {
            ENV_PREFIX + name.upper(): str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }


def upper_case(value: Any) -> Any:
    """An enumeration's name as written in any case (``info`` is ``INFO``)."""
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(upper_case)
]


class Settings(EnvSettings):
    """Options of one service instance (all workers share them)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    snapshot_path: Path | None = Field(
        default=None, description="Snapshot JSON to serve; None serves the embedded demo network."
    )
    data_dir: Path = Field(
        default=Path("data"),
        description="Local state: the embedded stock database and the metrics files.",
    )
    capture_path: Path | None = Field(
        default=None,
        description=(
            "Capture served promises into scenario stores: a directory (one DuckDB file per "
            "worker) or a .duckdb file (one worker); None captures nothing."
        ),
    )
    max_body_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=4 * MIB, description="Largest body of every route but PUT /v1/snapshot (413)."
    )
    max_snapshot_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * MIB,
        description=(
            "Largest PUT /v1/snapshot body (413). A large network, 2,000 nodes × 5,000 SKUs in "
            "the columnar inventory_table form, is about 42 MiB; the demo network's rows 7 MiB."
        ),
    )
    # What a body may cost once decoded and validated, judged from its bytes before decoding
    # (promise.body_limits; docs/limits.md derives the worker memory ceiling from these).
    max_body_memory_mib: Annotated[int, Field(ge=8, le=1024 * 1024)] = Field(
        default=DEFAULT_BODY_MEMORY_MIB,
        description=(
            "MiB a body of a route other than PUT /v1/snapshot may take decoded and validated, "
            "as bounded from its bytes before decoding; a body that could take more is a 413."
        ),
    )
    max_snapshot_memory_mib: Annotated[int, Field(ge=8, le=1024 * 1024)] = Field(
        default=1536,
        description=(
            "MiB a PUT /v1/snapshot body may take decoded and validated, as bounded from its "
            "bytes before decoding (a 2,000-node × 5,000-SKU columnar network: about 1.4 GiB); "
            "a body that could take more is a 413."
        ),
    )
    max_head_bytes: Annotated[int, Field(ge=4096, le=16 * MIB)] = Field(
        default=64 * 1024,
        description="Largest request line and headers a worker reads (431 beyond, then closed).",
    )
    max_cart_lines: Annotated[int, Field(ge=1, le=500)] = 100
    max_time_budget_ms: Annotated[int, Field(ge=1, le=60_000)] = 2_000
    default_time_budget_ms: Annotated[int, Field(ge=1, le=60_000)] = 50
    # Most of a solve is Python holding the GIL: a second solve thread in a worker only slows
    # both down (their wall-clock budgets run while they wait) and turns answers into
    # fallbacks. Scale with worker processes instead.
    max_concurrent_solves: Annotated[int, Field(ge=1, le=256)] = 1
    max_queued_solves: Annotated[int, Field(ge=0, le=10_000)] = 64
    # While a solve thread holds the GIL, the event loop waits up to this long for it before it
    # can read the next request or send a finished answer (Python's own default is 5 ms, which
    # lands in every queued request's latency several times over).
    switch_interval_ms: Annotated[float, Field(gt=0, le=100)] = 1.0
    retry_after_s: Annotated[int, Field(ge=1, le=3600)] = 1
    snapshot_poll_ms: Annotated[int, Field(ge=10, le=60_000)] = Field(
        default=200,
        description="How often each worker polls the authority for a swapped snapshot.",
    )
    log_level: LogLevel = "INFO"
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins granted CORS (e.g. https://shop.example); "
        "empty turns CORS off.",
    )
    # Until callers have roles, a snapshot inside a promise body is an operator's what-if tool:
    # off by default, and bounded, because indexing it runs in the worker's one solve slot.
    inline_snapshots: bool = Field(
        default=False,
        description="Accept POST /v1/promise bodies that carry their own snapshot.",
    )
    max_inline_snapshot_nodes: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    max_inline_snapshot_rows: Annotated[int, Field(ge=0, le=100_000_000)] = 100_000
    # --- who may call ---------------------------------------------------------------------
    auth_key_cache_s: Annotated[float, Field(ge=0, le=300)] = Field(
        default=5.0,
        description="How long a worker trusts an API key it looked up: a revocation reaches "
        "every worker of every host within this.",
    )
    jwt_audience: str | None = Field(
        default=None, description="Required 'aud' of bearer tokens (with a JWT key or JWKS file)."
    )
    jwt_issuer: str | None = Field(default=None, description="Required 'iss' of bearer tokens.")
    jwt_public_key_file: Path | None = Field(
        default=None, description="PEM public key of the token issuer (RS256, ES256 or EdDSA)."
    )
    jwt_jwks_file: Path | None = Field(
        default=None, description="JWKS file of the token issuer; a token's kid picks the key."
    )
    open_networks: str = Field(
        default="",
        description="Comma-separated network ranges (e.g. 10.0.0.0/8) whose callers read "
        "/metrics and the API docs without a credential; empty: a credential is needed.",
    )
    rate_limit_per_s: Annotated[float, Field(gt=0, le=1_000_000)] = Field(
        default=100.0,
        description="Requests per second per principal, sustained, unless its key says.",
    )
    rate_limit_burst: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        default=200, description="Requests per principal at once above the sustained rate."
    )
    rate_limit_redis_url: str = Field(
        default="",
        description="Redis URL (redis://host:6379/0) sharing each principal's rate across "
        "workers and hosts; empty: each worker counts on its own.",
    )
    rate_limit_redis_timeout_ms: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=200,
        description="A rate check Redis has not answered in this long lets the request through "
        "(and is logged): a slow Redis must not stop checkout.",
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        """The default time budget must itself be an acceptable budget."""
        if self.default_time_budget_ms > self.max_time_budget_ms:
            raise ValueError(
                f"default_time_budget_ms ({self.default_time_budget_ms}) exceeds "
                f"max_time_budget_ms ({self.max_time_budget_ms})"
            )
        if self.jwt_public_key_file is not None and self.jwt_jwks_file is not None:
            raise ValueError("set one of jwt_public_key_file and jwt_jwks_file, not both")
        issuer_key = self.jwt_public_key_file or self.jwt_jwks_file
        if issuer_key is not None and not self.jwt_audience:
            raise ValueError("bearer tokens need jwt_audience: the 'aud' this service accepts")
        return self

    def open_network_list(self) -> tuple[str, ...]:
        """The ranges of ``open_networks``, without blanks."""
        return tuple(cidr.strip() for cidr in self.open_networks.split(",") if cidr.strip())

    def cors_allow_list(self) -> tuple[str, ...]:
        """The origins of ``cors_origins``, without blanks."""
        return tuple(origin.strip() for origin in self.cors_origins.split(",") if origin.strip())
