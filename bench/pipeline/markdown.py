"""`report.md`: the report as Markdown, one function per section.

Pure functions of the decoded `Report`, so they are unit-tested without running anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bench.pipeline.markdown_tables import cpu, fmt, pct, table
from bench.pipeline.report import Report, SlowReaderFigures, StreamFigures, TracingFigures

# The tables' columns.
_SCENARIO_HEADER = (
    *("scenario", "conc.", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"),
    *("cpu service", "cpu cassandra", "cpu lg", "lg share", "service cpu µs/req"),
)
_CEILING_HEADER = (
    *("ceiling", "conc.", "per second", "p50 ms", "p99 ms", "errors"),
    *("cpu client/service", "cpu cassandra", "client/service cpu µs per op"),
)
_STREAM_HEADER = (
    *("rows/s", "streams", "seconds per stream p50", "first row ms", "errors"),
    *("service RSS before MiB", "peak MiB", "cpu service", "cpu cassandra"),
)
_TRACING_HEADER = (
    *("configuration", "environment", "req/s", "p50 ms", "p99 ms", "spans received"),
    *("spans per request", "cpu service", "cpu receiver", "service cpu µs/req"),
)


def render_markdown(report: Report) -> str:
    lines = [*_heading(report), *_targets(report), *_scenarios(report), *_ceilings(report)]
    if report.streaming is not None:
        lines += _streaming(report.streaming)
    if report.slow_readers is not None:
        lines += slow_readers_section(report.slow_readers)
    if report.tracing is not None:
        lines += _tracing(report, report.tracing)
    lines += _machine(report)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(lines)


def _heading(report: Report) -> list[str]:
    settings = report.settings
    return [
        "# cqlstar benchmark",
        "",
        f"Run {report.started_at} on commit `{report.machine.git_commit}`; "
        f"{report.duration_s:.0f} s in all. Reproduce with:",
        "",
        f"    {report.command}",
        "",
        f"Each measurement runs {settings.seconds} s after {settings.warmup_seconds} s of "
        f"warm-up; wrk uses {settings.wrk_threads} thread(s); granian serves with "
        f"{settings.granian_workers} worker(s) and LOG_LEVEL={settings.log_level}. "
        f"Ratios are taken at concurrency {report.ceilings.reference_concurrency}.",
        "",
    ]


def _targets(report: Report) -> list[str]:
    lines = ["## Against the targets", ""]
    ratios = report.ratios
    lines += table(
        ["measure", "value", "goal", "met"],
        ([t.target, fmt(t.value, 3), t.goal, fmt(t.met)] for t in report.targets),
    )
    return [
        *lines,
        f"`get_user` at concurrency {report.ceilings.reference_concurrency} is "
        f"{pct(ratios.get_user_vs_raw_driver)} of the raw driver, "
        f"{pct(ratios.get_user_vs_async_layer)} of the async layer and "
        f"{pct(ratios.get_user_vs_http_floor)} of the HTTP floor; the async layer reaches "
        f"{pct(ratios.async_layer_vs_raw_driver)} of the raw driver.",
        "",
    ]


def _scenarios(report: Report) -> list[str]:
    lines = [
        "## Scenarios over HTTP",
        "",
        "CPU columns are CPU seconds used during the measurement by the service (granian and its "
        "workers), Cassandra and the load generator; `lg share` is the load generator's share of "
        "the three.",
        "",
    ]
    return lines + table(
        _SCENARIO_HEADER,
        (
            [
                *(e.name, e.concurrency, e.requests_per_second, e.p50_ms, e.p90_ms),
                *(e.p99_ms, e.max_ms, e.errors),
                *(cpu(e, "service"), cpu(e, "cassandra"), cpu(e, "load_generator")),
                *(pct(e.load_generator_cpu_share), e.service_cpu_us_per_request),
            ]
            for e in report.scenarios
        ),
    )


def _ceilings(report: Report) -> list[str]:
    ceilings, ratios = report.ceilings, report.ratios
    rows: list[Sequence[object]] = []
    for kind, reads in (("raw_driver", ceilings.raw_driver), ("async_layer", ceilings.async_layer)):
        rows += [
            [
                *(kind, e.concurrency, e.reads_per_second, e.p50_ms, e.p99_ms, e.errors),
                *(cpu(e, "client"), cpu(e, "cassandra"), e.client_cpu_us_per_read),
            ]
            for e in reads
        ]
    rows += [
        [
            *("http_floor", e.concurrency, e.requests_per_second, e.p50_ms, e.p99_ms, e.errors),
            *(cpu(e, "service"), cpu(e, "cassandra"), e.service_cpu_us_per_request),
        ]
        for e in ceilings.http_floor
    ]
    return [
        "## Ceilings",
        "",
        "- raw driver: the same prepared read by key with `execute_async` + callbacks from a plain "
        "Python process, `concurrency` requests in flight, tuple rows.",
        "- async layer: the same read through `cqlstar.aiocassandra` with that many asyncio tasks "
        "on uvloop.",
        "- HTTP floor: the service's app (`create_app`) answering a constant user-shaped body at "
        "`/bench/floor` without touching Cassandra.",
        "",
        *table(_CEILING_HEADER, rows),
        "CPU per operation is the steadier comparison on a shared machine: at concurrency "
        f"{ceilings.reference_concurrency}, the raw driver's client CPU per read is "
        f"{pct(ratios.get_user_cpu_efficiency_vs_raw_driver)} of what the service spends "
        "per `get_user` request, and "
        f"{pct(ratios.async_layer_cpu_efficiency_vs_raw_driver)} of what the async layer "
        "spends per read.",
        "",
    ]


def _streaming(stream: StreamFigures) -> list[str]:
    lines = [
        "## Streaming",
        "",
        f"`GET /users/stream?limit={stream.rows_per_stream}&fetch_size={stream.fetch_size}` "
        "with `Accept: application/x-ndjson`, one client reading streams back to back.",
        "",
    ]
    lines += table(
        _STREAM_HEADER,
        [
            [
                *(stream.rows_per_second, stream.streams, stream.p50_ms / 1000),
                *(stream.first_row_ms, stream.errors, stream.baseline_rss_mb, stream.peak_rss_mb),
                *(cpu(stream, "service"), cpu(stream, "cassandra")),
            ]
        ],
    )
    if growth := stream.rss_growth_mb_by_rows:
        lines += [
            "Peak RSS growth over the service's RSS before streaming, by rows per stream "
            "(flat means memory does not grow with the row count):",
            "",
        ]
        lines += table(["rows per stream", "RSS growth MiB"], [[k, v] for k, v in growth.items()])
    if stream.streams_after_first:
        lines += [
            f"Service RSS after the first of the {stream.streams_after_first + 1} streams "
            f"read back to back: {stream.rss_after_first_stream_mb} MiB; after the last: "
            f"{stream.rss_after_last_stream_mb} MiB (what finished streams leave behind).",
            "",
        ]
    return lines


def slow_readers_section(result: SlowReaderFigures) -> list[str]:
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(result.statuses.items()))
    return [
        "## Slow and stalled stream readers",
        "",
        f"{result.stalled} clients open `GET /users/stream?limit=1000000&fetch_size="
        f"{result.fetch_size}` (NDJSON) and never read; {result.slow} more read about "
        f"{result.slow_reader_kib_per_s} KiB/s each. Held {result.hold_s} s. Answers: {answers}.",
        "",
        "| RSS before MiB | held MiB | peak MiB | after they left MiB | MiB per open stream "
        "| pages per open stream | page KiB | /health p50 ms | /health max ms |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {result.baseline_rss_mb} | {result.held_rss_mb} | {result.peak_rss_mb} "
        f"| {result.after_close_rss_mb} | {result.growth_per_open_stream_mb} "
        f"| {result.growth_per_open_stream_pages} | {result.page_kib} "
        f"| {result.health_p50_ms} | {result.health_max_ms} |",
        "",
    ]


def _tracing(report: Report, tracing: TracingFigures) -> list[str]:
    ratios = report.ratios
    lines = [
        "## Tracing cost",
        "",
        f"Spans exported to: {tracing.receiver}. The configurations were measured in "
        f"{tracing.rounds} alternating round(s); requests per second and CPU are over all "
        "rounds, latency percentiles the median round's.",
        "",
    ]
    lines += table(
        _TRACING_HEADER,
        (
            [
                *(c.name, f"`{c.environment}`", c.requests_per_second, c.p50_ms, c.p99_ms),
                *(c.spans_received, c.spans_per_request),
                *(cpu(c, "service"), cpu(c, "receiver"), c.service_cpu_us_per_request),
            ]
            for c in tracing.configurations
        ),
    )
    return [
        *lines,
        f"Throughput lost with no exporter (the default): {pct(ratios.tracing_default_cost)}; "
        f"at 100% sampling: {pct(ratios.tracing_on_cost)}; "
        f"sampled at 10%: {pct(ratios.tracing_sampled_cost)}. Service CPU per "
        f"request added by tracing at 100%: {pct(ratios.tracing_on_cpu_cost)}; "
        f"at 10%: {pct(ratios.tracing_sampled_cpu_cost)}.",
        "",
    ]


def _machine(report: Report) -> list[str]:
    machine = report.machine
    rows: Iterable[Sequence[object]] = [
        ["cpu", machine.cpu],
        ["cores", machine.cores],
        ["memory", f"{machine.memory_gib} GiB"],
        ["load average at start", ", ".join(map(str, machine.load_average_at_start))],
        ["kernel", machine.kernel],
        ["python", machine.python],
        ["cassandra", report.cassandra_version],
        ["load generator", str(report.load_generator or "-")],
        *[[name, version] for name, version in machine.packages.items()],
    ]
    return ["## Machine", "", *table(["fact", "value"], rows)]
