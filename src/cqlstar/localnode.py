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
    cluster/node1/ ... cluster/node3/                     (`cqlstar.localcluster`)

`NodeSpec` says what differs between two local nodes (address, ports, folder, heap, seeds, token,
extra settings); the jars, `cassandra.yaml` template and JVM command are shared, so the single node
and the three-node cluster cannot drift apart.

Readiness means a CQL query answers, not that the port is open.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
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
cluster_name: {cluster_name}
num_tokens: 1
initial_token: {initial_token}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seeds}"
listen_address: {address}
rpc_address: {address}
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
memtable_heap_space: {memtable}
memtable_offheap_space: {memtable}
key_cache_size: 16MiB
# Storage-attached indexes are what the service uses for `age`; 5.0 has them on by default.
sasi_indexes_enabled: false
materialized_views_enabled: false
"""

# The single node's request timeouts: the API's /slow_query and /long_running_query and generous
# client budgets need room.
_SINGLE_NODE_TIMEOUTS = """\
read_request_timeout: 15000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
request_timeout: 20000ms
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


def _lib_dir() -> Path:
    return cache_root() / f"cassandra-{CASSANDRA_VERSION}" / "lib"


def _log(message: str) -> None:
    print(f"[cassandra] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class NodeSpec:
    """Where one local node lives and listens: everything that differs between two local nodes.

    The single node and each node of the local cluster (`cqlstar.localcluster`) are started from
    the same jars, `cassandra.yaml` template and JVM command; only these fields differ.
    """

    directory: Path
    address: str = "127.0.0.1"
    cql_port: int = 9042
    storage_port: int = 7000
    jmx_port: int = 7199
    heap: str = "1G"
    cluster_name: str = "cqlstar-local"
    seeds: tuple[str, ...] = ("127.0.0.1",)
    initial_token: int = 0
    memtable: str = "128MiB"
    # Appended to cassandra.yaml (keys that the template does not set).
    extra_yaml: str = ""
    # JVM system properties (`-D...`) beyond the ones every node gets.
    extra_jvm_flags: tuple[str, ...] = ()

    @property
    def pid_file(self) -> Path:
        return self.directory / "cassandra.pid"

    @property
    def where(self) -> str:
        return f"{self.address}:{self.cql_port}"


def single_node() -> NodeSpec:
    """The shared development node (or a throwaway one on another CQL port, see CQLSTAR_NODE_PORT).

    One folder per CQL port, so a throwaway second node (the outage test's) never touches the data
    of the node everyone shares.
    """
    directory = cache_root() / ("node" if CQL_PORT == 9042 else f"node-{CQL_PORT}")
    return NodeSpec(
        directory=directory,
        cql_port=CQL_PORT,
        storage_port=STORAGE_PORT,
        jmx_port=JMX_PORT,
        heap=HEAP,
        seeds=(f"127.0.0.1:{STORAGE_PORT}",),
        extra_yaml=_SINGLE_NODE_TIMEOUTS,
        # Start fast: a single node has no peers to wait for.
        extra_jvm_flags=(
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=0",
        ),
    )


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


def _write_config(spec: NodeSpec) -> Path:
    conf = spec.directory / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (spec.directory / "logs").mkdir(exist_ok=True)
    yaml = _CASSANDRA_YAML.format(
        cluster_name=spec.cluster_name,
        initial_token=spec.initial_token,
        seeds=",".join(spec.seeds),
        address=spec.address,
        data=spec.directory / "data",
        cql_port=spec.cql_port,
        storage_port=spec.storage_port,
        memtable=spec.memtable,
    )
    (conf / "cassandra.yaml").write_text(yaml + spec.extra_yaml)
    (conf / "logback.xml").write_text(_LOGBACK.format(logs=spec.directory / "logs"))
    return conf


def _java_command(java: str, lib: Path, conf: Path, spec: NodeSpec) -> list[str]:
    jars = sorted(str(p) for p in lib.glob("*.jar"))
    jamm = next(j for j in jars if Path(j).name.startswith("jamm-"))
    return [
        java,
        f"-Xms{spec.heap}",
        f"-Xmx{spec.heap}",
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
        "-Dcassandra.load_ring_state=false",
        *spec.extra_jvm_flags,
        # JMX listens on 127.0.0.1 whatever the node's address: each local node needs its own port.
        f"-Dcassandra.jmx.local.port={spec.jmx_port}",
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dlogback.configurationFile=file://{conf / 'logback.xml'}",
        f"-Dcassandra.logdir={spec.directory / 'logs'}",
        f"-Dcassandra.storagedir={spec.directory / 'data'}",
        "-cp",
        os.pathsep.join([str(conf), *jars]),
        "org.apache.cassandra.service.CassandraDaemon",
        "-f",
    ]


def node_pid(spec: NodeSpec) -> int | None:
    """The pid of the spec's node if its process is alive (running or frozen), else None."""
    try:
        pid = int(spec.pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def running_pid() -> int | None:
    return node_pid(single_node())


def cql_answers(host: str = "127.0.0.1", port: int = CQL_PORT, timeout: float = 5.0) -> str | None:
    """The release version if a CQL query to this very node succeeds, else None."""
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


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def launch(spec: NodeSpec) -> int:
    """Start the spec's node in the background unless its process is alive; return its pid."""
    pid = node_pid(spec)
    if pid is not None:
        return pid
    java = find_java17()
    lib = ensure_jars()
    conf = _write_config(spec)
    log_path = spec.directory / "logs" / "stdout.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            _java_command(java, lib, conf, spec),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=spec.directory,
        )
    spec.pid_file.write_text(str(proc.pid))
    _log(
        f"started Cassandra {CASSANDRA_VERSION} on {spec.where} (pid {proc.pid}); "
        f"data in {spec.directory / 'data'}"
    )
    return proc.pid


def start() -> str:
    """Start the single node in the background unless it already answers; return its version."""
    spec = single_node()
    version = (
        cql_answers(spec.address, spec.cql_port) if port_open(spec.address, spec.cql_port) else None
    )
    if version:
        _log(f"Cassandra {version} already answers on {spec.where}")
        return version
    return wait_ready(spec, launch(spec))


def wait_ready(spec: NodeSpec, pid: int, timeout: float = START_TIMEOUT_S) -> str:
    """Wait until the node answers CQL; on failure, print its log's tail and exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            _fail(spec, f"the Cassandra process on {spec.where} exited during start-up")
        if port_open(spec.address, spec.cql_port) and (
            version := cql_answers(spec.address, spec.cql_port)
        ):
            _log(f"Cassandra {version} answers CQL on {spec.where}")
            return version
        time.sleep(1)
    _fail(spec, f"Cassandra on {spec.where} did not answer CQL within {timeout:.0f}s")
    raise AssertionError("unreachable")


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: probe it instead
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return waited == 0


def _fail(spec: NodeSpec, reason: str) -> None:
    logs = spec.directory / "logs"
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
        f"{reason}.\nWhat to do: read the log above; check that {spec.where} is free "
        f"(`ss -ltnp | grep {spec.cql_port}`), that a JDK 17 is installed, and that the disk has "
        "room. `just cassandra-reset` (or `just cluster-reset`) wipes the data and starts over."
    )


def stop_node(spec: NodeSpec, grace_s: float = 60.0) -> None:
    """SIGTERM (SIGKILL after `grace_s`); a frozen node is thawed first so it can exit cleanly."""
    pid = node_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGCONT)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.5)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)
    spec.pid_file.unlink(missing_ok=True)
    _log(f"stopped Cassandra on {spec.where} (pid {pid})")


def stop() -> None:
    spec = single_node()
    if node_pid(spec) is None:
        _log("no local Cassandra is running")
        return
    stop_node(spec)


def reset() -> None:
    stop()
    shutil.rmtree(single_node().directory, ignore_errors=True)
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
        version = cql_answers() if port_open("127.0.0.1", CQL_PORT) else None
        print(f"answering: Cassandra {version}" if version else "not answering")
        sys.exit(0 if version else 1)


if __name__ == "__main__":
    main()
