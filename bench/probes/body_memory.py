"""What one request body costs the worker in memory: `uv run python -m bench.probes.body_memory`.

Serves the service (`python -m cqlstar`, authentication off, keyspace `BENCH_KEYSPACE` or
`cqlstar_bench`), then POSTs a valid user padded to 1 MiB with an ignored field `x` of `[[],[],...]`:
once, then 8 at a time. It prints the worker's resident set before and the growth of its peak
(`VmHWM`) after each step. Bodies used to be parsed into Python objects before being checked
(about 350,000 empty lists for this body); `cqlstar.web.inputs` decodes them straight into the
route's type and skips ignored fields, so the peak should stay near the body's own size.
"""

from __future__ import annotations

import concurrent.futures
import os
import tempfile
from pathlib import Path

from bench.harness.procs import process_tree
from bench.harness.server import SERVICE_FACTORY, request, serve, stop

ONE_MIB = 1024 * 1024
CONCURRENT = 8


def padded_body(size: int = ONE_MIB) -> bytes:
    head = b'{"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "x": ['
    count = (size - len(head) - 2) // 3
    return head + b",".join([b"[]"] * count) + b"]}"


def _status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    env = {
        "CASSANDRA_HOSTS": os.environ.get("CASSANDRA_HOSTS", "127.0.0.1"),
        "CASSANDRA_PORT": os.environ.get("CASSANDRA_PORT", "9042"),
        "CASSANDRA_KEYSPACE": os.environ.get("BENCH_KEYSPACE", "cqlstar_bench"),
        "CQLSTAR_AUTH": "disabled",
        "LOG_LEVEL": "WARNING",
    }
    body = padded_body()
    server = serve("body_memory", SERVICE_FACTORY, env, Path(tempfile.mkdtemp()))
    try:
        worker = max(process_tree(server.pid))  # granian's one worker, started after its parent
        request(server.base_url + "/users?limit=1")
        rss, peak = _status_mib(worker, "VmRSS"), _status_mib(worker, "VmHWM")
        status, _ = request(server.base_url + "/users", "POST", body, timeout_s=60)
        after_one = _status_mib(worker, "VmHWM") - peak
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            statuses = list(
                pool.map(
                    lambda _: request(server.base_url + "/users", "POST", body, timeout_s=120)[0],
                    range(CONCURRENT),
                )
            )
        after_many = _status_mib(worker, "VmHWM") - peak
    finally:
        stop(server)
    print(
        f"body {len(body):,} bytes (status {status}, then {sorted(set(statuses))}); worker RSS "
        f"before {rss:.1f} MiB; peak growth after one request {after_one:+.1f} MiB, after "
        f"{CONCURRENT} at once {after_many:+.1f} MiB"
    )


if __name__ == "__main__":
    main()
