"""Schemathesis over every operation of the served app: the OpenAPI document and the server must
not drift apart (issue 12, item 7).

A bounded run (`FUZZ_EXAMPLES` examples per operation and phase, a fixed seed) of `st run` with
every check (no 5xx, status codes, content types, headers and bodies as documented, valid data
accepted, invalid data refused, methods the path does not allow refused, stateful links) against
the service served by granian on a keyspace of its own, with authentication off. Answers that are
right although the schema cannot predict them are listed, with why, in `schemathesis_hooks.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from served import ServedApp, serve_app, stop_app

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
# Slow routes answer 504 after two seconds instead of 5 and 10: the run stays short.
REQUEST_BUDGET_S = "2"


@pytest.fixture(scope="module")
def fuzzed_app(
    cassandra: Any, keyspace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    """The service on a keyspace of its own: generated users never meet other tests' rows."""
    fuzz_keyspace = f"{keyspace}_fuzz_{uuid.uuid4().hex[:6]}"
    env = {
        **cassandra.env,
        "CASSANDRA_KEYSPACE": fuzz_keyspace,
        "LOG_LEVEL": "WARNING",
        "CQLSTAR_AUTH": "disabled",
    }
    served = serve_app(env, tmp_path_factory.mktemp("fuzz") / "server.log")
    try:
        yield served
    finally:
        stop_app(served)
        cassandra.drop_keyspace(fuzz_keyspace)


def test_every_operation_behaves_as_documented(fuzzed_app: ServedApp, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{fuzzed_app.base_url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(FUZZ_EXAMPLES),
        "--generation-deterministic",
        "--header",
        f"X-Request-Timeout: {REQUEST_BUDGET_S}",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    # Run in a scratch directory: schemathesis keeps a cache of past failures (`.schemathesis/`)
    # in its working directory, which would make runs depend on each other.
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20_000:] + "\n" + fuzzed_app.log_text()[-4000:]
    # It did run every operation (an empty or unreachable document would pass vacuously).
    document = httpx.get(f"{fuzzed_app.base_url}/openapi.json", timeout=10).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert operations > 20
    assert f"Tested: {operations}" in report, report[-4000:]
    assert "Server error" not in report
