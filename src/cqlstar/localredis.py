"""A local Redis for development, tests and benchmarks: Debian's `redis-server` 7.0 on loopback.

Developer tooling, not part of the service, like `cqlstar.localnode` for Cassandra: `just redis`,
`just serve`, `just test` and `just bench` call it when no `REDIS_URL` names a Redis.

Where the server comes from: Debian's own packages (`redis-tools`, which holds the server binary,
`redis-server`, which names it, and the two libraries they need that a minimal Debian lacks,
`libjemalloc2` and `liblzf1`), fetched once with `apt-get download` and unpacked with `dpkg-deb -x`
into the cache (`cqlstar.debpackages`). Nothing is installed system-wide, so nothing needs root (beyond the `apt-get update`
that a fresh machine's package lists need, which `.ci/run` does) and no init script starts a second,
system Redis on 6379. Where `apt-get` does not exist, a `redis-server` 7.x on PATH is used instead.

Layout under the cache (``$XDG_CACHE_HOME/cqlstar`` or ``~/.cache/cqlstar``)::

    redis-debian/root/usr/bin/redis-server   the unpacked packages (fetched once)
    redis-<port>/redis.pid redis.log         one folder per instance, by port

An instance listens on 127.0.0.1 only (port 6380 by default, not Redis's usual 6379, so it never
meets another Redis on the machine), with persistence off (no RDB snapshots, no AOF: it holds rate
limit windows and connection counts, which are worth nothing after a restart), daemonized with a
pidfile. It is ready when PING answers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from cqlstar import debpackages
from cqlstar.localnode import cache_root

# Debian 12's package is 7.0.x; security updates move the patch level, which is why the version is
# checked by its major and minor only.
REDIS_SERIES = "7.0."
DEBIAN_PACKAGES = ("redis-tools", "redis-server", "libjemalloc2", "liblzf1")
DEFAULT_PORT = int(os.environ.get("CQLSTAR_REDIS_PORT", "6380"))
START_TIMEOUT_S = 20.0


def _log(message: str) -> None:
    print(f"[redis] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class RedisServer:
    """The redis-server program and the library folder it needs at run time."""

    program: Path
    library_path: Path | None

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.library_path is not None:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(None, [str(self.library_path), env.get("LD_LIBRARY_PATH")])
            )
        return env


@dataclass(frozen=True, slots=True)
class RedisInstance:
    """One local Redis: its port and the folder holding its pidfile and log."""

    port: int = DEFAULT_PORT

    @property
    def directory(self) -> Path:
        return cache_root() / f"redis-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        """The server's pid if its process exists (running or frozen), else None."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid


def ensure_server() -> RedisServer:
    """Debian's redis-server 7.0, unpacked into the cache once; later calls are free."""
    if not debpackages.can_fetch():
        found = shutil.which("redis-server")
        if found is None:
            raise SystemExit(
                "No redis-server: on Debian or Ubuntu this module fetches it with apt-get; elsewhere "
                "install Redis 7 (e.g. `brew install redis`) or point REDIS_URL at a running Redis."
            )
        return RedisServer(Path(found), None)
    try:
        root = debpackages.unpacked("redis-debian", DEBIAN_PACKAGES)
    except debpackages.PackagesUnavailable as error:
        raise SystemExit(f"{error}\nOr install Redis 7 yourself and set REDIS_URL.") from None
    server = RedisServer(
        root / "usr" / "bin" / "redis-server", root / "usr" / "lib" / "x86_64-linux-gnu"
    )
    version = server_version(server)
    if not version.startswith(REDIS_SERIES):
        raise SystemExit(f"expected redis-server {REDIS_SERIES}x from Debian, got {version}")
    return server


def server_version(server: RedisServer) -> str:
    out = subprocess.run(
        [str(server.program), "--version"],
        capture_output=True,
        text=True,
        env=server.environment(),
        check=True,
    ).stdout
    # "Redis server v=7.0.15 sha=... malloc=jemalloc-5.3.0 bits=64 build=..."
    return next(word[2:] for word in out.split() if word.startswith("v="))


def ping(port: int, timeout: float = 1.0) -> str | None:
    """The server's version if PING answers on 127.0.0.1:port, else None."""
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        if client.ping():
            return str(client.info("server")["redis_version"])
    except redis.RedisError:
        return None
    finally:
        client.close()
    return None


def start(instance: RedisInstance | None = None) -> str:
    """Start the instance unless it already answers; return its URL once PING answers."""
    instance = instance or RedisInstance()
    if version := ping(instance.port):
        _log(f"Redis {version} already answers on 127.0.0.1:{instance.port}")
        return instance.url
    if instance.pid() is None:
        server = ensure_server()
        instance.directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(server.program),
                "--bind",
                "127.0.0.1",
                "--port",
                str(instance.port),
                # Persistence off: what the service keeps here is only worth something while it runs.
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(instance.pid_file),
                "--logfile",
                str(instance.log_file),
                "--dir",
                str(instance.directory),
            ],
            env=server.environment(),
            stdin=subprocess.DEVNULL,
            check=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if version := ping(instance.port):
            _log(f"Redis {version} answers on 127.0.0.1:{instance.port} (pid {instance.pid()})")
            return instance.url
        time.sleep(0.1)
    tail = instance.log_file.read_text(errors="replace").splitlines()[-20:]
    print("\n".join([f"--- last lines of {instance.log_file} ---", *tail]), file=sys.stderr)
    raise SystemExit(
        f"Redis did not answer PING on 127.0.0.1:{instance.port} within {START_TIMEOUT_S:.0f}s.\n"
        f"What to do: read the log above; check that the port is free "
        f"(`ss -ltnp | grep {instance.port}`)."
    )


def stop(instance: RedisInstance | None = None) -> None:
    """SIGTERM (SIGKILL after 10 s); a frozen server is thawed first so that it can exit."""
    instance = instance or RedisInstance()
    pid = instance.pid()
    if pid is None:
        _log(f"no local Redis is running on port {instance.port}")
        return
    os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and instance.pid() is not None:
        time.sleep(0.05)
    if instance.pid() is not None:
        os.kill(pid, signal.SIGKILL)
    instance.pid_file.unlink(missing_ok=True)
    _log(f"stopped Redis on port {instance.port} (pid {pid})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cqlstar.localredis", description=__doc__.splitlines()[0]
    )
    parser.add_argument("action", choices=["start", "stop", "status", "fetch", "url"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    arguments = parser.parse_args(argv)
    instance = RedisInstance(arguments.port)
    if arguments.action == "start":
        start(instance)
    elif arguments.action == "stop":
        stop(instance)
    elif arguments.action == "fetch":
        ensure_server()
    elif arguments.action == "url":
        print(instance.url)
    else:
        version = ping(instance.port)
        print(f"answering: Redis {version}" if version else "not answering")
        sys.exit(0 if version else 1)


if __name__ == "__main__":
    main()
