"""What authentication adds to a request: the same route with and without the access guard.

Apps on the demo network, driven in process over ASGI (no sockets, so the difference is the
guard's own cost, not network noise). In each app, rounds interleave the variants so that drift
hits all of them alike, and each variant is compared with that app's own floor:

- ``floor``: the route declared public for the request (no credential read, no rate token);
- ``key``: an API key (cached lookup, SHA-256 of the secret, role check, local rate bucket);
- ``token-es256`` / ``token-rs256``: a JWT verified against the issuer's key;
- ``key`` in the ``Redis-rate`` app (with ``--redis URL``): the rate bucket shared in Redis.

Routes: ``POST /v1/promise/validate`` (parse and check, the framework floor) and ``POST
/v1/promise`` (a realistic cart solved on live stock). Reported per variant: median and p99
in ms, and the median's excess over the floor in the same run.

Usage::

    python -m bench.auth --json out/auth.json [--rounds 2000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import pathlib
import statistics
import tempfile
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar import Litestar

import scenarios
from bench._common import machine, percentiles, promise_key, write_outputs
from promise.access.guard import PRINCIPAL_STATE
from promise.access.principal import Principal, Scope
from promise.access.rules import ACCESS_OPT, Access
from promise.app import create_app
from promise.settings import Settings

AUDIENCE = "promise-bench"
PUBLIC = Access(public=True)
FLOOR = {"x-bench-floor": "1"}


def _token(key: Any, algorithm: str) -> str:
    """A long-lived token with the promise role."""
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": "bench",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + dt.timedelta(hours=1),
        "scope": "promise",
    }
    return jwt.encode(claims, key, algorithm=algorithm)


def _pem(public_key: Any, path: pathlib.Path) -> pathlib.Path:
    """Write a public key as PEM."""
    path.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _app(root: pathlib.Path, public_key_file: pathlib.Path, redis_url: str) -> Litestar:
    """The demo app taking tokens of ``public_key_file``; Redis rate buckets when a URL is given."""
    settings = Settings.from_env(
        {},
        data_dir=root / "data",
        jwt_public_key_file=public_key_file,
        jwt_audience=AUDIENCE,
        rate_limit_redis_url=redis_url,
        rate_limit_per_s=1e6,
        rate_limit_burst=10**6,
    )
    return create_app(settings, initial_snapshot=scenarios.generate_network)


async def _measure(
    app: Litestar, variants: dict[str, dict[str, str]], bodies: list[bytes], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Interleaved rounds of every variant on both routes; latencies in ms."""
    out: dict[str, dict[str, list[float]]] = {}
    floor_principal = Principal(id="bench", kind="key", scopes=frozenset({Scope.PROMISE}))

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        # The floor skips the guard, so the principal handlers read is put in place here.
        if scope["type"] == "http" and (b"x-bench-floor", b"1") in scope["headers"]:
            scope.setdefault("state", {})[PRINCIPAL_STATE] = floor_principal
        await app(scope, receive, send)

    transport = httpx.ASGITransport(app=asgi)
    handlers = {
        path: app.route_handler_method_map[path]["POST"]
        for path in ("/v1/promise/validate", "/v1/promise")
    }
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://b") as c:
        while (await c.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.05)
        for path, handler in handlers.items():
            declared = handler.opt[ACCESS_OPT]
            series: dict[str, list[float]] = {name: [] for name in variants}
            count = rounds if path.endswith("validate") else max(rounds // 4, 50)
            for i in range(count + 20):
                body = bodies[i % len(bodies)]
                for name, headers in variants.items():
                    floor = name.startswith("floor")
                    handler.opt[ACCESS_OPT] = PUBLIC if floor else declared
                    started = time.perf_counter()
                    answer = await c.post(
                        path, content=body, headers={"content-type": "application/json", **headers}
                    )
                    elapsed = (time.perf_counter() - started) * 1000.0
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name} {path}: {answer.status_code} {answer.text}")
                    if i >= 20:  # the first rounds warm caches and connections
                        series[name].append(elapsed)
            handler.opt[ACCESS_OPT] = declared
            out[path] = series
    return out


def _rows(measured: dict[str, dict[str, list[float]]], app: str) -> dict[str, dict[str, Any]]:
    """Per route, each variant's percentiles and its median's excess over the same app's floor."""
    out: dict[str, dict[str, Any]] = {}
    for path, series in measured.items():
        floor = statistics.median(series["floor"])
        out[path] = {
            f"{name} ({app} app)": {
                **percentiles(samples),
                "n": len(samples),
                "excess_p50_ms": round(statistics.median(samples) - floor, 3),
            }
            for name, samples in series.items()
        }
    return out


def run(rounds: int, redis_url: str) -> dict[str, Any]:
    """Measure every variant against its own app's floor; the report."""
    snapshot = scenarios.generate_network()
    carts = scenarios.generate_carts(snapshot, count=200, seed=5)
    bodies = [cart.model_dump_json(exclude_none=True).encode() for cart in carts]
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    report: dict[str, Any] = {"benchmark": "auth", "machine": machine(), "routes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        root = pathlib.Path(tmp)
        for algorithm, key in (("ES256", ec_key), ("RS256", rsa_key)):
            pem = _pem(key.public_key(), root / f"{algorithm}.pem")
            app = _app(root / algorithm, pem, "")
            variants = {
                "floor": FLOOR,
                "key": {"Authorization": f"Bearer {promise_key(app)}"},
                f"token-{algorithm.lower()}": {"Authorization": f"Bearer {_token(key, algorithm)}"},
            }
            rows = _rows(asyncio.run(_measure(app, variants, bodies, rounds)), algorithm)
            for path, row in rows.items():
                report["routes"].setdefault(path, {}).update(row)
        if redis_url:
            pem = root / "ES256.pem"
            shared = _app(root / "redis", pem, redis_url)
            variants = {"floor": FLOOR, "key": {"Authorization": f"Bearer {promise_key(shared)}"}}
            rows = _rows(asyncio.run(_measure(shared, variants, bodies, rounds)), "Redis-rate")
            for path, row in rows.items():
                report["routes"].setdefault(path, {}).update(row)
    return report


def _markdown(report: dict[str, Any]) -> str:
    """The report as a table."""
    lines = ["# Authentication cost", "", "| route | variant | p50 ms | p99 ms | p50 over floor |"]
    lines.append("|---|---|---|---|---|")
    for path, variants in report["routes"].items():
        for name, row in variants.items():
            lines.append(
                f"| {path} | {name} | {row['p50_ms']} | {row['p99_ms']} | {row['excess_p50_ms']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, default=pathlib.Path("out/auth.json"))
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--redis", default="", help="also measure Redis rate buckets")
    args = parser.parse_args(argv)
    report = run(args.rounds, args.redis)
    write_outputs(args.json, report, _markdown(report))
    print(_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
