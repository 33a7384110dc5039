"""Static checks of the deployment files: no network, no containers, seconds.

They catch the mistakes that otherwise only show up on `docker compose up`
(a renamed service still referenced elsewhere, a health condition on a
service without a healthcheck, an image drifting from the collector release
the tests build) and lint the Dockerfile, with hadolint when it is installed
and with structural checks of our own regardless.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
OTEL = ROOT / "otel"

NGINX_CONF = ROOT / "deploy" / "nginx" / "cqlstar.conf"
REALM_FILE = ROOT / "deploy" / "keycloak" / "cqlstar-realm.json"

REQUIRED_SERVICES = {
    "cassandra",
    "keycloak",
    "redis",
    "otel-collector",
    "jaeger",
    "prometheus",
    "cqlstar",
    "proxy",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _load(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def _collector_release() -> str:
    version = _load(OTEL / "builder-config.yaml")["dist"]["version"]
    return str(version)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Map of dependency -> condition (the short list form means started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host_ip, host_port, container_port) for each short-syntax port."""
    out = []
    for entry in service.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) == 3, f"publish with an explicit host IP: {entry!r}"
        out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


# --------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------


def test_compose_has_the_whole_stack(services: dict[str, dict[str, Any]]) -> None:
    missing = REQUIRED_SERVICES - services.keys()
    assert not missing, f"compose.yaml lacks {sorted(missing)}"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image!r} has no tag"
        assert tag not in {"", "latest"}, f"{name}: pin {image!r} to a release"


def test_collector_image_matches_the_built_release(services: dict[str, dict[str, Any]]) -> None:
    # Tests run the ocb build; the stack runs the contrib image. Same release
    # means the same component code reads otel/collector.yaml in both.
    image = services["otel-collector"]["image"]
    assert image == f"otel/opentelemetry-collector-contrib:{_collector_release()}"


def test_builder_manifest_components_share_one_release() -> None:
    manifest = _load(OTEL / "builder-config.yaml")
    release = _collector_release()
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions", "providers")
    gomods = [entry["gomod"] for kind in kinds for entry in manifest.get(kind, [])]
    gomods.append(manifest["telemetry"]["gomod"])
    for gomod in gomods:
        version = gomod.split()[1]
        if version.startswith("v1."):
            # Stable modules (confmap providers) are numbered 1.N alongside 0.M;
            # checked by ocb itself, here only that they are a plain release.
            assert re.fullmatch(r"v1\.\d+\.\d+", version), gomod
        else:
            assert version == f"v{release}", f"{gomod} is not on release {release}"


def test_collector_mounts_its_config(services: dict[str, dict[str, Any]]) -> None:
    collector = services["otel-collector"]
    mounts = {}
    for volume in collector.get("volumes", []):
        host, container = str(volume).split(":")[:2]
        mounts[container] = host
    config_args = [a.split("=", 1)[1] for a in collector["command"] if a.startswith("--config=")]
    assert config_args, "the collector must be given --config"
    for path in config_args:
        assert path in mounts, f"--config {path} is not mounted"
    assert mounts[config_args[0]] == "./otel/collector.yaml"


def test_bind_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_depends_on_targets_and_conditions(services: dict[str, dict[str, Any]]) -> None:
    healthchecked = {n for n, s in services.items() if "healthcheck" in s}
    # Built from our Dockerfile, which declares a HEALTHCHECK of its own.
    healthchecked |= {n for n, s in services.items() if "build" in s}
    for name, service in services.items():
        for dep, condition in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert condition in {"service_started", "service_healthy"}, (name, dep, condition)
            if condition == "service_healthy":
                assert dep in healthchecked, (
                    f"{name} waits for {dep} to be healthy; it has no check"
                )


def test_depends_on_has_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in _depends_on(services[name]):
            visit(dep, (*path, name))
        done.add(name)

    for name in services:
        visit(name, ())


def test_cassandra_service(services: dict[str, dict[str, Any]]) -> None:
    cassandra = services["cassandra"]
    assert cassandra["image"].startswith("cassandra:5.0")
    env = _env(cassandra)
    # Cassandra refuses to start with only one of the two set.
    assert env.get("MAX_HEAP_SIZE")
    assert env.get("HEAP_NEWSIZE")
    test = " ".join(cassandra["healthcheck"]["test"])
    assert "cqlsh" in test
    assert "describe keyspaces" in test


def test_service_wiring(services: dict[str, dict[str, Any]]) -> None:
    app = services["cqlstar"]
    assert app["build"]["dockerfile"] == "Dockerfile"
    env = _env(app)
    assert env["CASSANDRA_HOSTS"] == "cassandra"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == "8000"
    # Authentication on, against the stack's Keycloak; shared state in the stack's Redis.
    assert env["CQLSTAR_AUTH"] == "oidc"
    assert urlsplit(env["OIDC_ISSUER"]).hostname == "keycloak"
    redis_url = urlsplit(env["REDIS_URL"])
    assert (redis_url.scheme, redis_url.hostname, redis_url.port) == ("redis", "redis", 6379)
    # Replicas accept each other's page tokens only with one secret between them.
    assert env["CQLSTAR_PAGE_TOKEN_SECRET"]
    deps = _depends_on(app)
    assert deps["cassandra"] == "service_healthy"
    assert deps["keycloak"] == "service_healthy"
    assert deps["redis"] == "service_healthy"
    assert "otel-collector" in deps


def test_service_runs_replicas_behind_the_proxy(services: dict[str, dict[str, Any]]) -> None:
    app = services["cqlstar"]
    assert app["deploy"]["replicas"] >= 2
    # Replicas of one service cannot share a host port: clients come in through the proxy.
    assert not app.get("ports"), "publish the proxy, not the replicas"
    assert "container_name" not in app  # one name cannot be given to several containers
    proxy = services["proxy"]
    repo, _, _ = proxy["image"].rpartition(":")
    assert repo == "nginx"
    assert ("127.0.0.1", 8000) in {(ip, host) for ip, host, _ in _published(proxy)}
    mounts = dict(str(v).split(":")[:2] for v in proxy["volumes"])
    assert mounts.get("./deploy/nginx/cqlstar.conf") == "/etc/nginx/conf.d/default.conf"
    assert _depends_on(proxy)["cqlstar"] == "service_healthy"


def test_proxy_config_reaches_every_replica(services: dict[str, dict[str, Any]]) -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    published = {container for _, _, container in _published(services["proxy"])}
    listens = {
        int(m) for m in re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)\s*;", conf, re.MULTILINE)
    }
    assert published <= listens, f"the proxy publishes {published}, nginx listens on {listens}"
    # Compose's DNS answers the service name with every replica; `resolve` (and the zone it
    # needs) keeps following it as replicas come and go, through Docker's embedded resolver.
    port = _env(services["cqlstar"])["PORT"]
    assert re.search(rf"^\s*server\s+cqlstar:{port}\s+resolve\s*;", conf, re.MULTILINE)
    assert re.search(r"^\s*zone\s+\S+\s+\d+k\s*;", conf, re.MULTILINE)
    assert re.search(r"^resolver\s+127\.0\.0\.11\b", conf, re.MULTILINE)
    # WebSocket upgrades and streamed responses pass through.
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_buffering off;" in conf
    # nginx's healthcheck asks a port that is not published.
    health = " ".join(services["proxy"]["healthcheck"]["test"])
    health_port = int(re.search(r"127\.0\.0\.1:(\d+)/", health).group(1))  # type: ignore[union-attr]
    assert health_port in listens
    assert health_port not in published


def test_keycloak_service_matches_the_issuer(services: dict[str, dict[str, Any]]) -> None:
    from cqlstar.identity.localkeycloak import KEYCLOAK_VERSION

    keycloak = services["keycloak"]
    # The release `just keycloak` runs, so the tests and the stack import the realm alike.
    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"
    command = keycloak["command"]
    assert command[0] == "start-dev"
    assert "--import-realm" in command
    mounts = dict(str(v).split(":")[:2] for v in keycloak["volumes"])
    target = mounts["./deploy/keycloak/cqlstar-realm.json"]
    assert target.startswith("/opt/keycloak/data/import/")
    # The `iss` Keycloak writes is its --hostname plus /realms/<realm>: exactly the replicas'
    # OIDC_ISSUER, or every token would be refused.
    options = dict(a.split("=", 1) for a in command if a.startswith("--") and "=" in a)
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))["realm"]
    issuer = _env(services["cqlstar"])["OIDC_ISSUER"]
    assert issuer == f"{options['--hostname']}/realms/{realm}"
    # ... and reachable: the host and port the replicas use are Keycloak's service and HTTP port.
    hostname = urlsplit(options["--hostname"])
    container_ports = {container for _, _, container in _published(keycloak)}
    assert hostname.port in container_ports
    health = " ".join(keycloak["healthcheck"]["test"])
    assert f"/realms/{realm}/.well-known/openid-configuration" in health


def test_redis_service(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    repo, _, tag = redis["image"].rpartition(":")
    assert repo == "redis"
    assert tag.startswith("7.")
    assert "ping" in " ".join(redis["healthcheck"]["test"])


def test_otel_endpoints_agree_across_files(services: dict[str, dict[str, Any]]) -> None:
    collector_cfg = _load(OTEL / "collector.yaml")
    grpc = collector_cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc.endswith(":4317")  # what the service is pointed at above
    jaeger = collector_cfg["exporters"]["otlp_grpc/jaeger"]["endpoint"]
    assert "jaeger:4317" in jaeger
    assert "jaeger" in services
    prom_port = collector_cfg["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]
    scrape = _load(OTEL / "prometheus.yml")
    targets = [
        t
        for job in scrape["scrape_configs"]
        for c in job.get("static_configs", [])
        for t in c["targets"]
    ]
    assert f"otel-collector:{prom_port}" in targets
    prometheus = services["prometheus"]
    assert any("otel/prometheus.yml" in str(v) for v in prometheus["volumes"])


def test_prometheus_scrapes_every_replica(services: dict[str, dict[str, Any]]) -> None:
    scrape = _load(OTEL / "prometheus.yml")
    [job] = [j for j in scrape["scrape_configs"] if j["job_name"] == "cqlstar"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # DNS service discovery: one target per replica, not one name that lands on either.
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["cqlstar"]
    assert sd["type"] == "A"
    assert str(sd["port"]) == _env(services["cqlstar"])["PORT"]


def test_ports_are_loopback_and_distinct(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[int, str] = {}
    for name, service in services.items():
        for host_ip, host_port, _ in _published(service):
            # Development credentials throughout this stack: keep it off the LAN.
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port} on {host_ip}"
            assert host_port not in seen, f"{name} and {seen.get(host_port)} both take {host_port}"
            seen[host_port] = name
    for port in (8000, 4317, 16686, 9090, 9042, 8180, 6379):
        assert port in seen, f"port {port} not published"


# The Compose Specification's reference loader, the library `docker compose` itself reads files
# with, ships a command that loads a file the same way (interpolation, schema, references) and
# exits non-zero on any error. Built from the Go module proxy where no compose CLI is installed;
# pinned to a release the machines' Go toolchain builds (later ones ask for a newer Go).
COMPOSE_SPEC_MODULE = "github.com/compose-spec/compose-go/v2"
COMPOSE_SPEC_VERSION = "v2.16.2"


def _compose_command() -> list[str] | None:
    """`docker compose config -q` if the CLI has the plugin, else a standalone docker-compose."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose", "-f", "{file}", "config", "-q"]
    if shutil.which("docker-compose"):
        return ["docker-compose", "-f", "{file}", "config", "-q"]
    return None


def _compose_spec_validator() -> list[str] | None:
    """The reference loader's command, built once into the cache; None where Go is missing."""
    from cqlstar.localnode import cache_root

    bin_dir = cache_root() / "compose-spec" / COMPOSE_SPEC_VERSION
    binary = bin_dir / "cmd"
    if not binary.is_file():
        if shutil.which("go") is None:
            return None
        bin_dir.mkdir(parents=True, exist_ok=True)
        # At most two compile jobs: the machines have two cores, shared.
        env = {**os.environ, "GOBIN": str(bin_dir), "GOFLAGS": "-p=2 -buildvcs=false"}
        proc = subprocess.run(
            ["go", "install", f"{COMPOSE_SPEC_MODULE}/cmd@{COMPOSE_SPEC_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, f"building the compose-spec validator failed:\n{proc.stderr}"
    return [str(binary), "{file}"]


@pytest.fixture(scope="module")
def compose_validator() -> list[str]:
    command = _compose_command() or _compose_spec_validator()
    if command is None:
        pytest.skip("no docker compose, docker-compose or Go toolchain to validate with")
    return command


def _validate(command: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    # Parses, interpolates and checks the file against the Compose schema entirely client-side:
    # no engine needed.
    return subprocess.run(
        [part.replace("{file}", str(path)) for part in command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_config_validates(compose_validator: list[str]) -> None:
    proc = _validate(compose_validator, COMPOSE)
    assert proc.returncode == 0, proc.stderr


def test_compose_validator_refuses_a_misspelt_key(
    compose_validator: list[str], compose: dict[str, Any], tmp_path: Path
) -> None:
    # The same file with one key misspelt: the validator must say no, or its yes above means
    # nothing.
    broken = json.loads(json.dumps(compose))
    broken["services"]["cqlstar"]["deploy"] = {"replicaz": 2}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    proc = _validate(compose_validator, path)
    assert proc.returncode != 0
    assert "replicaz" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (kw, _) in enumerate(dockerfile) if kw == "FROM")
    return dockerfile[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return [str(v) for v in value]


def test_dockerfile_is_multi_stage(dockerfile: list[tuple[str, str]]) -> None:
    assert sum(kw == "FROM" for kw, _ in dockerfile) >= 2


def test_dependencies_installed_with_locked_uv_sync(dockerfile: list[tuple[str, str]]) -> None:
    runs = [args for kw, args in dockerfile if kw == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs, "dependencies must be installed with uv sync"
    for sync in syncs:
        assert "--frozen" in sync, "uv sync must use the lock file as is"
        assert "--no-dev" in sync
    # Dependencies in their own layer before the source is copied in.
    first_src_copy = next(
        i for i, (kw, args) in enumerate(dockerfile) if kw == "COPY" and "src" in args.split()
    )
    deps_only = next(i for i, (kw, args) in enumerate(dockerfile) if "--no-install-project" in args)
    assert deps_only < first_src_copy


def test_runtime_stage_copies_only_the_venv(final_stage: list[tuple[str, str]]) -> None:
    copies = [args for kw, args in final_stage if kw in {"COPY", "ADD"}]
    assert copies
    for args in copies:
        assert args.startswith("--from="), f"runtime stage copies from the context: {args}"


def test_runs_as_non_root_before_start(final_stage: list[tuple[str, str]]) -> None:
    users = [(i, args) for i, (kw, args) in enumerate(final_stage) if kw == "USER"]
    assert users, "runtime stage has no USER"
    index, user = users[-1]
    assert user.split(":")[0] not in {"root", "0"}
    start = [i for i, (kw, _) in enumerate(final_stage) if kw in {"ENTRYPOINT", "CMD"}]
    assert start
    assert all(index < i for i in start)


def test_entrypoint_is_exec_form_python_m_cqlstar(final_stage: list[tuple[str, str]]) -> None:
    entrypoints = [args for kw, args in final_stage if kw == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    # Exec form: the server is PID 1 and gets SIGTERM. Its granian options live in cqlstar.serving
    # (tested in tests/unit/serving); where it listens comes from HOST and PORT.
    assert _exec_form(entrypoints[0]) == ["python", "-m", "cqlstar"]
    env = " ".join(args for kw, args in final_stage if kw == "ENV").split()
    assert "HOST=0.0.0.0" in env
    assert "PORT=8000" in env


def test_healthcheck_and_port(final_stage: list[tuple[str, str]]) -> None:
    checks = [args for kw, args in final_stage if kw == "HEALTHCHECK"]
    assert len(checks) == 1
    check = checks[0]
    assert "/health" in check
    assert "curl" not in check
    assert "wget" not in check  # neither exists in the slim image
    assert any(kw == "EXPOSE" and "8000" in args.split() for kw, args in final_stage)


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Exclude everything, then admit exactly what the Dockerfile copies.
    assert patterns[0] == "*"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert {"pyproject.toml", "uv.lock", "README.md", "src"} <= admitted
    assert not admitted & {".venv", ".git", "tests"}


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed")
def test_hadolint() -> None:
    proc = subprocess.run(
        ["hadolint", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
