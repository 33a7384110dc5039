"""Turning a run's measurements into `report.json`, `report.md` and `report.png`.

Pure functions over plain dicts (the JSON that is written), so they are unit-tested without running
anything. The PNG is drawn by `bench.plot` with matplotlib; when matplotlib is not installed in the
project's environment, it is run through `uv run --with matplotlib` so nothing global changes.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import slow_readers
from bench.harness.config import ROOT

Entry = Mapping[str, Any]

# The targets: (key in `ratios`, human wording, goal, comparison).
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    ("get_user_vs_raw_driver", "get_user / raw-driver ceiling", 0.60, ">="),
    ("async_layer_vs_raw_driver", "async layer / raw-driver ceiling", 0.80, ">="),
    ("get_user_p99_over_p50", "get_user p99 / p50", 3.0, "<"),
    ("tracing_default_cost", "throughput lost to telemetry with no exporter", 0.05, "<"),
    ("tracing_sampled_cost", "throughput lost to tracing exported at 10%", 0.10, "<"),
    ("stream_rows_per_second", "streaming rows/s", 100_000.0, ">="),
)


def find(entries: Iterable[Entry], name: str, concurrency: int | None = None) -> Entry | None:
    for entry in entries:
        if entry.get("name") == name and (
            concurrency is None or entry.get("concurrency") == concurrency
        ):
            return entry
    return None


def _at(entries: Sequence[Entry], concurrency: int, key: str) -> float | None:
    for entry in entries:
        if entry.get("concurrency") == concurrency and entry.get(key):
            return float(entry[key])
    return None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _cost(with_feature: float | None, without: float | None) -> float | None:
    if with_feature is None or not without:
        return None
    return round(1 - with_feature / without, 3)


def _growth(with_feature: float | None, without: float | None) -> float | None:
    if with_feature is None or not without:
        return None
    return round(with_feature / without - 1, 3)


def compute_ratios(
    scenarios: Sequence[Entry], ceilings: Mapping[str, Any], reference_concurrency: int
) -> dict[str, float | None]:
    get_user = find(scenarios, "get_user", reference_concurrency)
    get_user_rps = float(get_user["requests_per_second"]) if get_user else None
    raw = ceilings.get("raw_driver_reads_per_second")
    layer = ceilings.get("async_layer_reads_per_second")
    floor = ceilings.get("http_floor_requests_per_second")
    tracing = {
        mode: float(entry["requests_per_second"])
        for mode in ("off", "default", "on", "sampled")
        if (entry := find(scenarios, f"get_user_tracing_{mode}"))
    }
    tracing_cpu = {
        mode: float(entry["service_cpu_us_per_request"])
        for mode in ("off", "default", "on", "sampled")
        if (entry := find(scenarios, f"get_user_tracing_{mode}"))
        and entry.get("service_cpu_us_per_request")
    }
    stream = find(scenarios, "stream_users")
    # CPU spent per request holds still when other work shares the machine; throughput does not.
    raw_cpu = _at(ceilings.get("raw_driver", []), reference_concurrency, "client_cpu_us_per_read")
    layer_cpu = _at(
        ceilings.get("async_layer", []), reference_concurrency, "client_cpu_us_per_read"
    )
    get_user_cpu = (
        float(get_user["service_cpu_us_per_request"])
        if get_user and get_user.get("service_cpu_us_per_request")
        else None
    )
    return {
        "get_user_cpu_efficiency_vs_raw_driver": _ratio(raw_cpu, get_user_cpu),
        "async_layer_cpu_efficiency_vs_raw_driver": _ratio(raw_cpu, layer_cpu),
        "get_user_vs_raw_driver": _ratio(get_user_rps, raw),
        "get_user_vs_http_floor": _ratio(get_user_rps, floor),
        "async_layer_vs_raw_driver": _ratio(layer, raw),
        "get_user_vs_async_layer": _ratio(get_user_rps, layer),
        "get_user_p99_over_p50": (
            _ratio(float(get_user["p99_ms"]), float(get_user["p50_ms"])) if get_user else None
        ),
        "tracing_default_cost": _cost(tracing.get("default"), tracing.get("off")),
        "tracing_on_cost": _cost(tracing.get("on"), tracing.get("off")),
        "tracing_sampled_cost": _cost(tracing.get("sampled"), tracing.get("off")),
        "tracing_default_cpu_cost": _growth(tracing_cpu.get("default"), tracing_cpu.get("off")),
        "tracing_on_cpu_cost": _growth(tracing_cpu.get("on"), tracing_cpu.get("off")),
        "tracing_sampled_cpu_cost": _growth(tracing_cpu.get("sampled"), tracing_cpu.get("off")),
        "stream_rows_per_second": float(stream["rows_per_second"]) if stream else None,
    }


def evaluate_targets(ratios: Mapping[str, float | None]) -> list[dict[str, Any]]:
    results = []
    for key, wording, goal, comparison in TARGETS:
        value = ratios.get(key)
        met = None if value is None else (value >= goal if comparison == ">=" else value < goal)
        results.append(
            {
                "key": key,
                "target": wording,
                "goal": f"{comparison} {goal:g}",
                "value": value,
                "met": met,
            }
        )
    return results


def ceiling_value(entries: Sequence[Entry], reference_concurrency: int, key: str) -> float | None:
    return _at(entries, reference_concurrency, key)


# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(_fmt(cell) if not isinstance(cell, str) else cell for cell in row) + " |"
        for row in rows
    ]
    return [*lines, ""]


def _cpu(entry: Entry, process: str) -> str:
    cpu = entry.get("cpu_seconds", {}).get(process)
    return "-" if cpu is None else f"{cpu:.1f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    settings = report["settings"]
    machine = report["machine"]
    ceilings = report["ceilings"]
    ref = ceilings["reference_concurrency"]
    lines = [
        "# cqlstar benchmark",
        "",
        f"Run {report['started_at']} on commit `{machine['git_commit']}`; "
        f"{report['duration_s']:.0f} s in all. Reproduce with:",
        "",
        f"    {report['command']}",
        "",
        f"Each measurement runs {settings['seconds']} s after {settings['warmup_seconds']} s of "
        f"warm-up; wrk uses {settings['wrk_threads']} thread(s); granian serves with "
        f"{settings['granian_workers']} worker(s) and LOG_LEVEL={settings['log_level']}. "
        f"Ratios are taken at concurrency {ref}.",
        "",
        "## Against the targets",
        "",
    ]
    lines += _table(
        ["measure", "value", "goal", "met"],
        ([t["target"], _fmt(t["value"], 3), t["goal"], _fmt(t["met"])] for t in report["targets"]),
    )
    ratios = report["ratios"]
    lines += [
        f"`get_user` at concurrency {ref} is {_pct(ratios.get('get_user_vs_raw_driver'))} of the "
        f"raw driver, {_pct(ratios.get('get_user_vs_async_layer'))} of the async layer and "
        f"{_pct(ratios.get('get_user_vs_http_floor'))} of the HTTP floor; the async layer reaches "
        f"{_pct(ratios.get('async_layer_vs_raw_driver'))} of the raw driver.",
        "",
        "## Scenarios over HTTP",
        "",
        "CPU columns are CPU seconds used during the measurement by the service (granian and its "
        "workers), Cassandra and the load generator; `lg share` is the load generator's share of "
        "the three.",
        "",
    ]
    lines += _table(
        [
            "scenario",
            "conc.",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "errors",
            "cpu service",
            "cpu cassandra",
            "cpu lg",
            "lg share",
            "service cpu µs/req",
        ],
        (
            [
                e["name"],
                e["concurrency"],
                e["requests_per_second"],
                e["p50_ms"],
                e["p90_ms"],
                e["p99_ms"],
                e["max_ms"],
                e["errors"],
                _cpu(e, "service"),
                _cpu(e, "cassandra"),
                _cpu(e, "load_generator"),
                _pct(e.get("load_generator_cpu_share")),
                e.get("service_cpu_us_per_request"),
            ]
            for e in report["scenarios"]
            if e["name"] != "stream_users"
        ),
    )
    lines += ["## Ceilings", ""]
    lines += [
        "- raw driver: the same prepared read by key with `execute_async` + callbacks from a plain "
        "Python process, `concurrency` requests in flight, tuple rows.",
        "- async layer: the same read through `cqlstar.aiocassandra` with that many asyncio tasks on "
        "uvloop.",
        "- HTTP floor: the service's app (`create_app`) answering a constant user-shaped body at "
        "`/bench/floor` without touching Cassandra.",
        "",
    ]
    ceiling_rows = []
    for kind, unit_key in (
        ("raw_driver", "reads_per_second"),
        ("async_layer", "reads_per_second"),
        ("http_floor", "requests_per_second"),
    ):
        for e in ceilings.get(kind, []):
            ceiling_rows.append(
                [
                    kind,
                    e["concurrency"],
                    e[unit_key],
                    e["p50_ms"],
                    e["p99_ms"],
                    e["errors"],
                    _cpu(e, "client" if kind != "http_floor" else "service"),
                    _cpu(e, "cassandra"),
                    e.get("client_cpu_us_per_read", e.get("service_cpu_us_per_request")),
                ]
            )
    lines += _table(
        [
            "ceiling",
            "conc.",
            "per second",
            "p50 ms",
            "p99 ms",
            "errors",
            "cpu client/service",
            "cpu cassandra",
            "client/service cpu µs per op",
        ],
        ceiling_rows,
    )
    lines += [
        "CPU per operation is the steadier comparison on a shared machine: at concurrency "
        f"{ref}, the raw driver's client CPU per read is "
        f"{_pct(ratios.get('get_user_cpu_efficiency_vs_raw_driver'))} of what the service spends "
        "per `get_user` request, and "
        f"{_pct(ratios.get('async_layer_cpu_efficiency_vs_raw_driver'))} of what the async layer "
        "spends per read.",
        "",
    ]
    if stream := find(report["scenarios"], "stream_users"):
        memory = report.get("streaming", {})
        lines += [
            "## Streaming",
            "",
            f"`GET /users/stream?limit={stream['rows_per_stream']}&fetch_size={stream['fetch_size']}` "
            "with `Accept: application/x-ndjson`, one client reading streams back to back.",
            "",
        ]
        lines += _table(
            [
                "rows/s",
                "streams",
                "seconds per stream p50",
                "first row ms",
                "errors",
                "service RSS before MiB",
                "peak MiB",
                "cpu service",
                "cpu cassandra",
            ],
            [
                [
                    stream["rows_per_second"],
                    stream["streams"],
                    stream["p50_ms"] / 1000,
                    stream["first_row_ms"],
                    stream["errors"],
                    stream["baseline_rss_mb"],
                    stream["peak_rss_mb"],
                    _cpu(stream, "service"),
                    _cpu(stream, "cassandra"),
                ]
            ],
        )
        if growth := memory.get("rss_growth_mb_by_rows"):
            lines += [
                "Peak RSS growth over the service's RSS before streaming, by rows per stream "
                "(flat means memory does not grow with the row count):",
                "",
            ]
            lines += _table(
                ["rows per stream", "RSS growth MiB"], [[k, v] for k, v in growth.items()]
            )
        if memory.get("streams_after_first"):
            lines += [
                f"Service RSS after the first of the {memory['streams_after_first'] + 1} streams "
                f"read back to back: {memory['rss_after_first_stream_mb']} MiB; after the last: "
                f"{memory['rss_after_last_stream_mb']} MiB (what finished streams leave behind).",
                "",
            ]
    if slow := report.get("slow_readers"):
        lines += slow_readers.markdown(slow)
    if tracing := report.get("tracing"):
        rounds = tracing.get("rounds", 1)
        lines += [
            "## Tracing cost",
            "",
            f"Spans exported to: {tracing['receiver']}. The configurations were measured in "
            f"{rounds} alternating round(s); requests per second and CPU are over all rounds, "
            "latency percentiles the median round's.",
            "",
        ]
        lines += _table(
            [
                "configuration",
                "environment",
                "req/s",
                "p50 ms",
                "p99 ms",
                "spans received",
                "spans per request",
                "cpu service",
                "cpu receiver",
                "service cpu µs/req",
            ],
            (
                [
                    c["name"],
                    f"`{c['environment']}`",
                    c["requests_per_second"],
                    c["p50_ms"],
                    c["p99_ms"],
                    c["spans_received"],
                    c.get("spans_per_request"),
                    _cpu(c, "service"),
                    _cpu(c, "receiver"),
                    c.get("service_cpu_us_per_request"),
                ]
                for c in tracing["configurations"]
            ),
        )
        lines += [
            f"Throughput lost with no exporter (the default): "
            f"{_pct(ratios.get('tracing_default_cost'))}; at 100% sampling: "
            f"{_pct(ratios.get('tracing_on_cost'))}; "
            f"sampled at 10%: {_pct(ratios.get('tracing_sampled_cost'))}. Service CPU per "
            f"request added by tracing at 100%: {_pct(ratios.get('tracing_on_cpu_cost'))}; "
            f"at 10%: {_pct(ratios.get('tracing_sampled_cpu_cost'))}.",
            "",
        ]
    lines += ["## Machine", ""]
    lines += _table(
        ["fact", "value"],
        [
            ["cpu", str(machine["cpu"])],
            ["cores", machine["cores"]],
            ["memory", f"{machine['memory_gib']} GiB"],
            ["load average at start", ", ".join(map(str, machine["load_average_at_start"]))],
            ["kernel", machine["kernel"]],
            ["python", machine["python"]],
            ["cassandra", str(report.get("cassandra_version", "-"))],
            ["load generator", str(report.get("load_generator", "-"))],
            *[[name, version] for name, version in machine["packages"].items()],
        ],
    )
    if notes := report.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


# ---------------------------------------------------------------------------------------------
# Files


def write_report(report: Mapping[str, Any], output: Path) -> list[str]:
    """Write the three files; returns notes about anything that could not be written."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "report.md").write_text(render_markdown(report))
    return render_png(output / "report.json", output / "report.png")


def render_png(report_json: Path, png: Path) -> list[str]:
    command = [sys.executable, "-m", "bench.plot", str(report_json), str(png)]
    if importlib.util.find_spec("matplotlib") is None:
        uv = shutil.which("uv")
        if uv is None:
            return ["report.png not drawn: matplotlib is not installed and uv is not on PATH"]
        command = [
            uv,
            "run",
            "--frozen",
            "--with",
            "matplotlib",
            "python",
            "-m",
            "bench.plot",
            str(report_json),
            str(png),
        ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        return [f"report.png not drawn: {completed.stderr.strip()[-500:]}"]
    return []
