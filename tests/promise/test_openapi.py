"""The published OpenAPI document is committed, so a change to the public contract is a diff.

``tests/promise/openapi.json`` holds the document the app publishes. When a change to the
routes or bodies alters it on purpose, regenerate it and commit it with the change::

    python -m promise.cli openapi > tests/promise/openapi.json
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from promise.openapi import published_json

SNAPSHOT = Path(__file__).with_name("openapi.json")
REGENERATE = "python -m promise.cli openapi > tests/promise/openapi.json"
# Lines of diff shown at most: enough to see what changed without flooding the report.
MAX_DIFF_LINES = 400


def _diff(committed: str, generated: str) -> str:
    """A unified diff from the committed document to the generated one."""
    lines = list(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            generated.splitlines(keepends=True),
            "tests/promise/openapi.json (committed)",
            "the app's document (generated)",
        )
    )
    shown = "".join(lines[:MAX_DIFF_LINES])
    more = (
        f"\n... and {len(lines) - MAX_DIFF_LINES} more lines" if len(lines) > MAX_DIFF_LINES else ""
    )
    return shown + more


def test_the_openapi_document_is_the_committed_one() -> None:
    """The app's OpenAPI document is tests/promise/openapi.json, byte for byte."""
    committed = SNAPSHOT.read_text(encoding="utf-8")
    generated = published_json()
    if generated != committed:
        pytest.fail(
            "the app's OpenAPI document differs from the committed one; if the change to the "
            f"public contract is deliberate, regenerate it with `{REGENERATE}`\n"
            + _diff(committed, generated),
            pytrace=False,
        )


def test_the_committed_document_is_what_the_app_serves(app_client: TestClient[Litestar]) -> None:
    """Clients read the committed document at /schema/openapi.json (any settings)."""
    served = app_client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_the_regenerating_command_prints_it_under_another_hash_seed() -> None:
    """The documented command prints the committed text, whatever the process's hash seed."""
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    printed = subprocess.run(
        [sys.executable, "-m", "promise.cli", "openapi"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout
    assert printed == SNAPSHOT.read_text(encoding="utf-8")
