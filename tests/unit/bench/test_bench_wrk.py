"""wrk's result line: parsed from a sample, and produced by the real wrk against a local server."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bench.harness.wrk import WrkError, compose_script, parse_result, run_wrk, to_result

SAMPLE = (
    "Running 1s test @ http://127.0.0.1:8000/\n"
    'BENCH_RESULT {"requests":2000,"duration_us":1000000,"bytes":1,"connect_errors":1,'
    '"read_errors":2,"write_errors":3,"status_errors":4,"timeout_errors":5,"min_us":100,'
    '"mean_us":900.5,"p50_us":800,"p90_us":1500,"p99_us":4000,"p999_us":6000,"max_us":9000}\n'
)


def test_result_line_becomes_milliseconds_rates_and_error_totals() -> None:
    result = to_result(parse_result(SAMPLE), cpu_s=0.25)
    assert result.requests == 2000
    assert result.requests_per_second == 2000.0
    assert (result.p50_ms, result.p90_ms, result.p99_ms, result.max_ms) == (0.8, 1.5, 4.0, 9.0)
    assert result.socket_errors == 6
    assert result.status_errors == 4
    assert result.timeouts == 5
    assert result.errors == 15
    assert result.load_generator_cpu_s == 0.25


def test_output_without_a_result_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="BENCH_RESULT"):
        parse_result("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_scripts_are_composed_with_the_shared_prelude(tmp_path: Path) -> None:
    script = compose_script("get_user.lua", tmp_path).read_text()
    assert "function done(summary, latency, requests)" in script
    assert 'wrk.format("GET", "/users/"' in script


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status = 404 if self.path.startswith("/missing") else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    _Handler.protocol_version = "HTTP/1.1"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.parametrize(
    ("script", "path", "needs_ids", "expect_status_errors"),
    [
        ("get_user.lua", "/", True, False),
        ("update_user.lua", "/", True, False),
        ("create_user.lua", "/", False, False),
        ("plain_get.lua", "/missing", False, True),
    ],
)
def test_real_wrk_runs_each_script_and_reports(
    local_server: str,
    tmp_path: Path,
    script: str,
    path: str,
    needs_ids: bool,
    expect_status_errors: bool,
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("3f1c2d4e-0000-4000-8000-000000000001\n3f1c2d4e-0000-4000-8000-000000000002\n")
    result = run_wrk(
        shutil.which("wrk") or "wrk",
        local_server + path,
        compose_script(script, tmp_path),
        connections=2,
        seconds=1,
        script_args=(str(ids),) if needs_ids else (),
    )
    assert result.requests > 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.socket_errors == 0
    if expect_status_errors:
        assert result.status_errors == result.requests
    else:
        assert result.errors == 0
