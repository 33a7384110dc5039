"""A local Keycloak for development, tests and benchmarks: the identity provider `just serve` and
`just test` log in at when no `OIDC_ISSUER` names another one.

This is developer tooling, not part of the service. It is the official distribution,
`org.keycloak:keycloak-quarkus-dist:<version>:zip`, fetched once from Maven Central with `mvn`
and unpacked under the cache (``~/.cache/cqlstar/keycloak/``, outside the repository), then
started by its own launcher (`bin/kc.sh start-dev`) in the background:

- on 127.0.0.1:8180 only, with `--hostname` set, so the tokens' `iss` is always
  `http://127.0.0.1:8180/realms/cqlstar` whatever Host header a caller sends;
- with an in-memory database, and the development realm imported from the repository's
  `deploy/keycloak/cqlstar-realm.json` at every start, so an edit to that file always applies
  and nothing done at runtime (an added signing key, a session) survives a restart;
- with a small heap and the JIT held to its first tier: Keycloak shares a 2-core machine with
  Cassandra, the service and the load generator;
- with a bootstrap administrator (`admin` / `admin`, development only: loopback, in memory)
  whose admin API the tests use to rotate the realm's signing keys.

Readiness means the realm's discovery document answers. The first start also runs Keycloak's
one-time build step (15 to 30 s more), redone whenever build options change.

`python -m cqlstar.identity.localkeycloak start|stop|status|fetch|issuer` (`just keycloak`,
`just keycloak-stop`); `start` prints the issuer URL on stdout once it answers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from cqlstar.localnode import alive, cache_root, port_open

# The one place the Keycloak release is pinned.
KEYCLOAK_VERSION = "26.7.3"
KEYCLOAK_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"

HOST = "127.0.0.1"
PORT = int(os.environ.get("CQLSTAR_KEYCLOAK_PORT", "8180"))
REALM = "cqlstar"
BASE_URL = f"http://{HOST}:{PORT}"
ISSUER = f"{BASE_URL}/realms/{REALM}"
DISCOVERY_URL = f"{ISSUER}/.well-known/openid-configuration"

# Development only: the master realm's administrator, created at each start (the database is in
# memory), reachable on loopback only.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # development only, documented as such

# Measured: with this heap and the JIT held to C1, Keycloak answers in about 17 s at about 400 MB.
HEAP_OPTIONS = "-Xms64m -Xmx256m"
JIT_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1"
START_TIMEOUT_S = float(os.environ.get("CQLSTAR_KEYCLOAK_START_TIMEOUT", "240"))

# Where the realm comes from: the repository's file, the same path the compose stack mounts.
REALM_FILE = Path(
    os.environ.get(
        "CQLSTAR_KEYCLOAK_REALM_FILE",
        str(Path(__file__).resolve().parents[3] / "deploy" / "keycloak" / "cqlstar-realm.json"),
    )
)

# Faster than JDK 17 for Keycloak (measured), and present on the project's machines.
_PREFERRED_JAVA_HOMES = ("/usr/lib/jvm/temurin-25-jdk-amd64",)


def _log(message: str) -> None:
    print(f"[keycloak] {message}", file=sys.stderr, flush=True)


def _root() -> Path:
    return cache_root() / "keycloak"


def home() -> Path:
    """The unpacked distribution."""
    return _root() / f"keycloak-{KEYCLOAK_VERSION}"


def _run_dir() -> Path:
    return _root() / ("run" if PORT == 8180 else f"run-{PORT}")


def pid_file() -> Path:
    return _run_dir() / "keycloak.pid"


def _log_path() -> Path:
    return _run_dir() / "keycloak.log"


def java_home() -> str:
    """`KEYCLOAK_JAVA_HOME`, else the Temurin 25 JDK if present, else `JAVA_HOME` or the default."""
    candidates = [os.environ.get("KEYCLOAK_JAVA_HOME"), *_PREFERRED_JAVA_HOMES]
    candidates.append(os.environ.get("JAVA_HOME"))
    if java := shutil.which("java"):
        candidates.append(str(Path(java).resolve().parent.parent))
    for candidate in filter(None, candidates):
        if (Path(candidate) / "bin" / "java").exists():
            return candidate
    raise SystemExit(
        "Keycloak needs a JDK 17 or newer and none was found. Install one (Debian: "
        "`apt-get install openjdk-17-jdk-headless`) or point KEYCLOAK_JAVA_HOME at it."
    )


def ensure_distribution() -> Path:
    """Fetch and unpack the pinned distribution once; later calls are free."""
    target = home()
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("Maven (`mvn`) is needed once to fetch Keycloak: apt-get install maven")
    download = _root() / "download"
    download.mkdir(parents=True, exist_ok=True)
    _log(f"fetching Keycloak {KEYCLOAK_VERSION} ({KEYCLOAK_ARTIFACT}) through Maven (once)")
    subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "dependency:copy",
            f"-Dartifact={KEYCLOAK_ARTIFACT}",
            f"-DoutputDirectory={download}",
        ],
        cwd=download,
        check=True,
    )
    archive = download / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip"
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(_root())
    # zipfile drops the permission bits; only the launchers need to run.
    for script in (target / "bin").glob("*.sh"):
        script.chmod(0o755)
    archive.unlink()
    marker.touch()
    _log(f"Keycloak {KEYCLOAK_VERSION} unpacked in {target}")
    return target


def _install_realm(distribution: Path) -> None:
    """Copy the repository's realm where `--import-realm` looks, so every start imports it."""
    if not REALM_FILE.exists():
        raise SystemExit(f"the development realm file {REALM_FILE} is missing")
    json.loads(REALM_FILE.read_text())  # a broken file fails here, with its name, not in Keycloak
    imports = distribution / "data" / "import"
    imports.mkdir(parents=True, exist_ok=True)
    for stale in imports.glob("*.json"):
        stale.unlink()
    shutil.copyfile(REALM_FILE, imports / REALM_FILE.name)


def command(distribution: Path) -> list[str]:
    return [
        "bash",
        str(distribution / "bin" / "kc.sh"),
        "start-dev",
        f"--http-host={HOST}",
        f"--http-port={PORT}",
        f"--hostname={BASE_URL}",
        "--db=dev-mem",
        "--import-realm",
    ]


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "JAVA_HOME": java_home(),
        "JAVA_OPTS_KC_HEAP": HEAP_OPTIONS,
        "JAVA_OPTS_APPEND": JIT_OPTIONS,
        "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USERNAME,
        "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


def discovery_answers(timeout: float = 3.0) -> bool:
    """Whether the realm's discovery document answers and names the expected issuer."""
    try:
        with urllib.request.urlopen(DISCOVERY_URL, timeout=timeout) as response:  # noqa: S310
            document = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return isinstance(document, dict) and document.get("issuer") == ISSUER


def running_pid() -> int | None:
    """The pid of the launcher this module started, if it is alive (running or frozen).

    The launcher (`kc.sh`) runs the JVM as its child, except after Keycloak's rebuild step, when it
    execs into it; so this pid is the JVM's or its parent's. Both lead a process group of their
    own (`start_new_session`), which is what `signal_keycloak` signals.
    """
    try:
        pid = int(pid_file().read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def signal_keycloak(sig: signal.Signals) -> None:
    """Send `sig` to the launcher and the JVM alike (SIGSTOP to one of them freezes nothing)."""
    pid = running_pid()
    if pid is None:
        raise ProcessLookupError("no local Keycloak started by this checkout is running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def start() -> str:
    """Start Keycloak in the background unless it already answers; return the issuer URL."""
    if discovery_answers():
        _log(f"Keycloak already answers: issuer {ISSUER}")
        return ISSUER
    pid = running_pid()
    if pid is None:
        if port_open(HOST, PORT):
            raise SystemExit(
                f"port {PORT} is taken by something that is not the {REALM!r} realm's Keycloak "
                f"(`ss -ltnp | grep {PORT}`)"
            )
        distribution = ensure_distribution()
        _install_realm(distribution)
        _run_dir().mkdir(parents=True, exist_ok=True)
        # This start's log only (truncated): its tail is what a failure shows.
        with _log_path().open("wb") as out:
            process = subprocess.Popen(
                command(distribution),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C must not reach it
                cwd=_run_dir(),
                env=environment(),
            )
        pid_file().write_text(str(process.pid))
        pid = process.pid
        _log(f"started Keycloak {KEYCLOAK_VERSION} (pid {pid}), realm from {REALM_FILE}")
    return _wait_ready(pid)


def _wait_ready(pid: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(pid):
            _fail("the Keycloak process exited during start-up")
        if discovery_answers():
            _log(f"Keycloak answers: issuer {ISSUER}")
            return ISSUER
        time.sleep(1)
    _fail(f"Keycloak's discovery document did not answer within {START_TIMEOUT_S:.0f}s")
    raise AssertionError("unreachable")


def _fail(reason: str) -> None:
    if _log_path().exists():
        tail = _log_path().read_text(errors="replace").splitlines()[-60:]
        print("\n".join([f"--- last lines of {_log_path()} ---", *tail]), file=sys.stderr)
    raise SystemExit(
        f"{reason}.\nWhat to do: read the log above; check that port {PORT} is free "
        f"(`ss -ltnp | grep {PORT}`), that a JDK 17 or newer is installed, and that "
        f"{REALM_FILE} is a valid realm. `just keycloak-stop` then `just keycloak` starts over."
    )


def stop(grace_s: float = 30.0) -> None:
    """SIGTERM (SIGKILL after `grace_s`); a frozen Keycloak is thawed first so it can exit."""
    pid = running_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        _log("no local Keycloak is running")
        return
    signal_keycloak(signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)  # the launcher forwards it to the JVM and waits for it
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.5)
    if alive(pid):
        signal_keycloak(signal.SIGKILL)  # the launcher alone would leave the JVM running
    pid_file().unlink(missing_ok=True)
    _log(f"stopped Keycloak (pid {pid})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cqlstar.identity.localkeycloak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("action", choices=["start", "stop", "status", "fetch", "issuer"])
    action = parser.parse_args(argv).action
    if action == "start":
        # The issuer on stdout, for `export OIDC_ISSUER="$(... start)"` (`just serve`).
        print(start())
    elif action == "stop":
        stop()
    elif action == "fetch":
        ensure_distribution()
    elif action == "issuer":
        print(ISSUER)
    else:
        answering = discovery_answers()
        print(f"answering: issuer {ISSUER}" if answering else "not answering")
        sys.exit(0 if answering else 1)


if __name__ == "__main__":
    main()
