"""A local single-node Apache Cassandra for development, tests and benchmarks.

This is developer tooling, not part of the service: `just cassandra`, `just serve`, `just test` and
`just bench` call it when no `CASSANDRA_HOSTS` names a cluster.

Why it is assembled from Maven artifacts rather than the release tarball: Maven Central stops
publishing `org.apache.cassandra:apache-cassandra:*:tar.gz:bin` after 4.0-alpha2, so no 5.0 tarball
can be fetched there. It does publish the server itself, `org.apache.cassandra:cassandra-all`, with
its whole runtime dependency tree. We let `mvn dependency:copy-dependencies` resolve that tree into a
cache folder, write our own small `cassandra.yaml` and logging config, and start
`org.apache.cassandra.service.CassandraDaemon` on the machine's JDK 17 with the module flags that
Cassandra's own launcher passes on 17. Nothing is written inside the repository.

Layout under the cache (``$XDG_CACHE_HOME/cqlstar`` or ``~/.cache/cqlstar``)::

    cassandra-<version>/lib/      the jars (downloaded once)
    node/conf/ node/data/ node/logs/ node/cassandra.pid   (node-<port>/ for another CQL port)

Readiness means a CQL query answers, not that the port is open.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# The one place the Cassandra release is pinned: the newest 5.0.x that Maven Central serves.
CASSANDRA_VERSION = "5.0.9"

CQL_PORT = int(os.environ.get("CQLSTAR_NODE_PORT", "9042"))
# Inter-node and JMX ports keep Cassandra's usual distance from the CQL port (7000, 7199 for 9042),
# so a second node on another CQL port does not collide with the first.
STORAGE_PORT = CQL_PORT - 2042
JMX_PORT = CQL_PORT - 1843
# A small heap: the node shares a 2-core machine with the service, the tests and the load generator.
HEAP = os.environ.get("CQLSTAR_NODE_HEAP", "1G")
START_TIMEOUT_S = float(os.environ.get("CQLSTAR_NODE_START_TIMEOUT", "180"))

# The flags Cassandra's launcher passes on JDK 17 (conf/jvm17-server.options): the server reaches
# into JDK internals for off-heap memory, memory measurement and JMX.
_JDK17_MODULE_FLAGS = [
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.math=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
]

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cqlstar.localnode</groupId><artifactId>cassandra-classpath</artifactId><version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

# Only what differs from Cassandra's defaults, chosen for a fast start and a small footprint.
_CASSANDRA_YAML = """\
cluster_name: cqlstar-local
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {storage_port}
native_transport_port: {cql_port}
start_native_transport: true
data_file_directories: [{data}/data]
commitlog_directory: {data}/commitlog
saved_caches_directory: {data}/saved_caches
hints_directory: {data}/hints
cdc_raw_directory: {data}/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
# A scratch node: keep disk use and background work small.
auto_snapshot: false
snapshot_on_duplicate_row_detection: false
incremental_backups: false
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
key_cache_size: 16MiB
# The API's /slow_query and /long_running_query and generous client budgets need room.
read_request_timeout: 15000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
# Storage-attached indexes are what the service uses for `age`; 5.0 has them on by default.
sasi_indexes_enabled: false
materialized_views_enabled: false
"""

_LOGBACK = """<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{logs}/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
"""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cqlstar"


def _node_dir() -> Path:
    # One folder per CQL port, so a throwaway second node (the outage test's) never touches the
    # data of the node everyone shares.
    return cache_root() / ("node" if CQL_PORT == 9042 else f"node-{CQL_PORT}")


def _lib_dir() -> Path:
    return cache_root() / f"cassandra-{CASSANDRA_VERSION}" / "lib"


def _log(message: str) -> None:
    print(f"[cassandra] {message}", file=sys.stderr, flush=True)


def find_java17() -> str:
    """The JDK 17 `java`: Cassandra 5.0 runs on 11 and 17 only, never on a newer default JDK."""
    candidates = [os.environ.get("CASSANDRA_JAVA_HOME"), os.environ.get("JAVA_HOME")]
    candidates += [str(p) for p in sorted(Path("/usr/lib/jvm").glob("*17*"))]
    candidates.append(str(Path(shutil.which("java") or "/usr/bin/java").resolve().parent.parent))
    for home in filter(None, candidates):
        java = Path(home) / "bin" / "java"
        if java.exists() and _java_major(java) == 17:
            return str(java)
    raise SystemExit(
        "Cassandra 5.0 needs a JDK 17 and none was found. Install one (Debian: "
        "`apt-get install openjdk-17-jdk-headless`) or point CASSANDRA_JAVA_HOME at it."
    )


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stderr
    except OSError:
        return None
    for line in out.splitlines():
        if "java.specification.version" in line:
            return int(line.split("=")[1].strip().split(".")[0])
    return None


def ensure_jars() -> Path:
    """Resolve cassandra-all and its runtime dependencies once; later calls are free."""
    lib = _lib_dir()
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("Maven (`mvn`) is needed once to fetch Cassandra: apt-get install maven")
    build = lib.parent / "resolve"
    build.mkdir(parents=True, exist_ok=True)
    (build / "pom.xml").write_text(_POM.format(version=CASSANDRA_VERSION))
    _log(f"fetching Apache Cassandra {CASSANDRA_VERSION} through Maven into {lib} (once)")
    subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ],
        cwd=build,
        check=True,
    )
    marker.touch()
    return lib


def _write_config(node: Path) -> Path:
    conf = node / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (node / "logs").mkdir(exist_ok=True)
    (conf / "cassandra.yaml").write_text(
        _CASSANDRA_YAML.format(data=node / "data", cql_port=CQL_PORT, storage_port=STORAGE_PORT)
    )
    (conf / "logback.xml").write_text(_LOGBACK.format(logs=node / "logs"))
    return conf


def _java_command(java: str, lib: Path, conf: Path) -> list[str]:
    jars = sorted(str(p) for p in lib.glob("*.jar"))
    jamm = next(j for j in jars if Path(j).name.startswith("jamm-"))
    return [
        java,
        f"-Xms{HEAP}",
        f"-Xmx{HEAP}",
        "-Xss512k",
        "-XX:+UseG1GC",
        "-XX:+ParallelRefProcEnabled",
        "-XX:CICompilerCount=2",
        "-XX:+UseStringDeduplication",
        "-XX:-UsePerfData",
        "-Djava.net.preferIPv4Stack=true",
        "-Djdk.attach.allowAttachSelf=true",
        f"-javaagent:{jamm}",
        *_JDK17_MODULE_FLAGS,
        # Start fast: a single node has no peers to wait for.
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.ring_delay_ms=0",
        "-Dcassandra.load_ring_state=false",
        f"-Dcassandra.jmx.local.port={JMX_PORT}",
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dlogback.configurationFile=file://{conf / 'logback.xml'}",
        f"-Dcassandra.logdir={conf.parent / 'logs'}",
        f"-Dcassandra.storagedir={conf.parent / 'data'}",
        "-cp",
        os.pathsep.join([str(conf), *jars]),
        "org.apache.cassandra.service.CassandraDaemon",
        "-f",
    ]


def _pid_file() -> Path:
    return _node_dir() / "cassandra.pid"


def running_pid() -> int | None:
    try:
        pid = int(_pid_file().read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def cql_answers(host: str = "127.0.0.1", port: int = CQL_PORT, timeout: float = 5.0) -> str | None:
    """The release version if a CQL query succeeds, else None."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        pass
    try:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy
    except ImportError:  # pragma: no cover - the driver is a runtime dependency
        return None
    cluster = Cluster(
        [host],
        port=port,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        execution_profiles={
            EXEC_PROFILE_DEFAULT: ExecutionProfile(
                load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=timeout
            )
        },
        protocol_version=5,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local").one()
        return str(row.release_version)
    except Exception:  # any failure means "not ready yet"
        return None
    finally:
        cluster.shutdown()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start() -> str:
    """Start the node in the background unless it already answers; return its release version."""
    version = cql_answers() if _port_open(CQL_PORT) else None
    if version:
        _log(f"Cassandra {version} already answers on 127.0.0.1:{CQL_PORT}")
        return version
    pid = running_pid()
    if pid is None:
        java = find_java17()
        lib = ensure_jars()
        node = _node_dir()
        conf = _write_config(node)
        log_path = node / "logs" / "stdout.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                _java_command(java, lib, conf),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=node,
            )
        _pid_file().write_text(str(proc.pid))
        pid = proc.pid
        _log(f"started Cassandra {CASSANDRA_VERSION} (pid {pid}); data in {node / 'data'}")
    return _wait_ready(pid)


def _wait_ready(pid: int) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            _fail("the Cassandra process exited during start-up")
        if _port_open(CQL_PORT) and (version := cql_answers()):
            _log(f"Cassandra {version} answers CQL on 127.0.0.1:{CQL_PORT}")
            return version
        time.sleep(1)
    _fail(f"Cassandra did not answer CQL within {START_TIMEOUT_S:.0f}s")
    raise AssertionError("unreachable")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: probe it instead
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return waited == 0


def _fail(reason: str) -> None:
    logs = _node_dir() / "logs"
    tail: list[str] = []
    for name in ("system.log", "stdout.log"):
        path = logs / name
        if path.exists():
            tail += [
                f"--- last lines of {path} ---",
                *path.read_text(errors="replace").splitlines()[-40:],
            ]
    print("\n".join(tail), file=sys.stderr)
    raise SystemExit(
        f"{reason}.\nWhat to do: read the log above; check that port {CQL_PORT} is free "
        f"(`ss -ltnp | grep {CQL_PORT}`), that a JDK 17 is installed, and that the disk has room. "
        f"`just cassandra-reset` wipes the local node's data and starts over."
    )


def stop() -> None:
    pid = running_pid()
    if pid is None:
        _log("no local Cassandra is running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.5)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    _pid_file().unlink(missing_ok=True)
    _log(f"stopped Cassandra (pid {pid})")


def reset() -> None:
    stop()
    shutil.rmtree(_node_dir(), ignore_errors=True)
    _log("local node data removed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cqlstar-node", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status", "reset", "fetch"])
    action = parser.parse_args(argv).action
    if action == "start":
        start()
    elif action == "stop":
        stop()
    elif action == "reset":
        reset()
    elif action == "fetch":
        ensure_jars()
    else:
        version = cql_answers() if _port_open(CQL_PORT) else None
        print(f"answering: Cassandra {version}" if version else "not answering")
        sys.exit(0 if version else 1)


if __name__ == "__main__":
    main()
