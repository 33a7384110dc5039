"""`cqlstar.serving`: the one definition of how cqlstar is served, built from settings and options."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from granian.constants import Interfaces, Loops

from cqlstar import serving
from cqlstar.serving import (
    APP_FACTORY,
    DEFAULT_BACKLOG,
    ServeOptions,
    granian_server,
    main,
    parse_options,
    serve_command,
)
from cqlstar.settings import Settings

ROOT = Path(__file__).resolve().parents[3]

BENCH_FLOOR = ServeOptions(
    factory="bench.harness.http_floor:create_floor_app", workers=2, backlog=2048
)


def test_the_server_binds_where_the_settings_say_with_the_projects_options() -> None:
    server = granian_server(Settings(host="0.0.0.0", port=8123))
    assert (server.bind_addr, server.bind_port) == ("0.0.0.0", 8123)
    assert server.interface == Interfaces.ASGI
    assert server.loop == Loops.uvloop
    assert (server.target, server.factory) == ("cqlstar.app:create_app", True)
    assert (server.workers, server.backlog) == (1, DEFAULT_BACKLOG)


def test_options_reach_the_server() -> None:
    server = granian_server(Settings(port=9001), BENCH_FLOOR)
    assert server.target == "bench.harness.http_floor:create_floor_app"
    assert (server.workers, server.backlog) == (2, 2048)
    assert server.bind_port == 9001


def test_the_default_command_has_no_flags() -> None:
    assert serve_command(python="/venv/bin/python") == ["/venv/bin/python", "-m", "cqlstar"]


def test_a_command_parses_back_into_its_options() -> None:
    command = serve_command(BENCH_FLOOR, python="python")
    assert command == [
        "python",
        "-m",
        "cqlstar",
        "--factory",
        "bench.harness.http_floor:create_floor_app",
        "--workers",
        "2",
        "--backlog",
        "2048",
    ]
    assert parse_options(command[3:]) == BENCH_FLOOR


def test_no_flags_means_the_app_one_worker_and_granians_backlog() -> None:
    assert parse_options([]) == ServeOptions(factory=APP_FACTORY, workers=1, backlog=1024)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--workers", "0"], "expected 1 or more"),
        (["--workers", "two"], "expected a whole number"),
        (["--backlog", "64"], "backlog=64: granian accepts 128 or more"),
        (["--factory", "cqlstar.app"], "expected module:callable"),
    ],
)
def test_bad_flags_exit_with_a_usage_message(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_options(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_main_serves_the_environments_settings_with_the_flags_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[tuple[Settings, ServeOptions]] = []
    monkeypatch.setattr(
        serving, "serve", lambda settings, options: served.append((settings, options))
    )
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8081")
    monkeypatch.setenv("CQLSTAR_AUTH", "disabled")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6380/0")
    main(["--workers", "2"])
    [(settings, options)] = served
    assert (settings.host, settings.port) == ("0.0.0.0", 8081)
    assert options == ServeOptions(workers=2)


def test_several_workers_without_redis_exit_2_before_granian_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[ServeOptions] = []
    monkeypatch.setattr(serving, "serve", lambda settings, options: served.append(options))
    monkeypatch.setenv("CQLSTAR_AUTH", "disabled")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["--workers", "2"])
    assert exited.value.code == 2
    assert "--workers 2 needs REDIS_URL" in capsys.readouterr().err
    assert served == []
    # One worker needs no Redis, and another factory (the benchmark's floor) keeps no shared state.
    main([])
    main(["--workers", "2", "--factory", "bench.harness.http_floor:create_floor_app"])
    assert [options.workers for options in served] == [1, 2]


@pytest.mark.parametrize(("name", "value"), [("PORT", "eighty"), ("PORT", "70000")])
def test_a_malformed_setting_stops_main_before_granian_starts(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_serve(settings: Settings, options: ServeOptions) -> None:
        raise AssertionError("granian started despite a malformed setting")

    monkeypatch.setattr(serving, "serve", must_not_serve)
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert f"{name}={value!r}: expected a port number" in capsys.readouterr().err


def run_python_m_cqlstar(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m cqlstar` in a child process, for the refusals that stop it before it serves."""
    return subprocess.run(
        [sys.executable, "-m", "cqlstar"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_cqlstar_refuses_a_malformed_port_before_binding() -> None:
    env = {**os.environ, "PORT": "80a"}
    proc = run_python_m_cqlstar(env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "cqlstar: PORT='80a': expected a port number"
    assert "Starting granian" not in proc.stdout + proc.stderr


def test_serving_imports_neither_the_web_layer_nor_the_driver() -> None:
    # A fresh interpreter: this test session has imported everything already.
    probe = (
        "import sys, cqlstar.serving; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'litestar', 'cassandra'} "
        "or m in {'cqlstar.app', 'cqlstar.web', 'cqlstar.database'}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def test_python_m_cqlstar_refuses_to_run_open_by_accident() -> None:
    """Authentication is on by default: without OIDC_ISSUER the service does not start at all."""
    env = {k: v for k, v in os.environ.items() if k not in {"OIDC_ISSUER", "CQLSTAR_AUTH"}}
    proc = run_python_m_cqlstar(env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("cqlstar: OIDC_ISSUER is not set")
    assert "CQLSTAR_AUTH=disabled" in proc.stderr
