"""Draws `report.png` from `report.json`: throughput, latency and the tracing/ceiling comparison.

    python -m bench.pipeline.plot bench/results/latest/report.json bench/results/latest/report.png

Needs matplotlib; `bench.pipeline.output` runs this module through `uv run --with matplotlib` when the
project's environment does not have it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness.ceiling import CeilingResult
from bench.pipeline.report import Report, ScenarioEntry, decode

_HTTP_SCENARIOS = ("get_user", "list_users", "create_user", "update_user")


def _series(
    entries: Sequence[ScenarioEntry] | Sequence[CeilingResult], name: str, key: str
) -> tuple[list[int], list[float]]:
    points = sorted(
        (e.concurrency, float(getattr(e, key)))
        for e in entries
        if not isinstance(e, ScenarioEntry) or e.name == name
    )
    return [c for c, _ in points], [v for _, v in points]


def draw(report: Report, png: Path) -> None:
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    fig, (throughput, latency, bars) = plt.subplots(1, 3, figsize=(18, 5.5))
    _throughput(throughput, report)
    _latency(latency, report)
    _bars(bars, report)
    fig.suptitle(
        f"cqlstar benchmark {report.started_at} ({report.settings.seconds} s per measurement, "
        f"{report.machine.cores} cores)"
    )
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def _concurrency_axis(axes: Any, report: Report) -> None:
    ticker: Any = importlib.import_module("matplotlib.ticker")
    levels = list(report.settings.concurrency)
    axes.set_xticks(levels, labels=levels)
    axes.xaxis.set_minor_locator(ticker.NullLocator())


def _throughput(axes: Any, report: Report) -> None:
    for name in _HTTP_SCENARIOS:
        x, y = _series(report.scenarios, name, "requests_per_second")
        if x:
            axes.plot(x, y, marker="o", label=name)
    ceilings = report.ceilings
    ceiling_series: tuple[tuple[str, Sequence[ScenarioEntry] | Sequence[CeilingResult], str], ...]
    ceiling_series = (
        ("raw_driver", ceilings.raw_driver, "k--"),
        ("async_layer", ceilings.async_layer, "k:"),
        ("http_floor", ceilings.http_floor, "k-."),
    )
    for kind, entries, style in ceiling_series:
        key = "requests_per_second" if kind == "http_floor" else "reads_per_second"
        x, y = _series(entries, kind, key)
        if x:
            axes.plot(x, y, style, marker="s", label=f"ceiling: {kind}")
    axes.set(xscale="log", xlabel="concurrency", ylabel="per second", title="Throughput")
    _concurrency_axis(axes, report)
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)


def _latency(axes: Any, report: Report) -> None:
    for index, name in enumerate(_HTTP_SCENARIOS):
        color = f"C{index}"
        x, p50 = _series(report.scenarios, name, "p50_ms")
        _, p99 = _series(report.scenarios, name, "p99_ms")
        if x:
            axes.plot(x, p99, marker="o", color=color, label=f"{name} p99")
            axes.plot(x, p50, marker=".", linestyle="--", color=color, label=f"{name} p50")
    axes.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="Latency")
    _concurrency_axis(axes, report)
    axes.legend(fontsize=7, ncol=2)
    axes.grid(alpha=0.3, which="both")


def _bars(axes: Any, report: Report) -> None:
    scenarios, ceilings = report.scenarios, report.ceilings
    ref = ceilings.reference_concurrency
    labels, values = [], []
    for label, value in (
        ("raw driver", ceilings.raw_driver_reads_per_second),
        ("async layer", ceilings.async_layer_reads_per_second),
        ("HTTP floor", ceilings.http_floor_requests_per_second),
        *(
            (f"tracing\n{mode}", e.requests_per_second)
            for mode in ("off", "default", "on", "sampled")
            for e in scenarios
            if e.name == f"get_user_tracing_{mode}"
        ),
    ):
        if value:
            labels.append(label)
            values.append(float(value))
    get_user = next((e for e in scenarios if e.name == "get_user" and e.concurrency == ref), None)
    if get_user:
        labels.append("get_user\n(default)")
        values.append(float(get_user.requests_per_second))
    axes.bar(range(len(values)), values, color="C0")
    axes.set_xticks(range(len(values)), labels=labels, fontsize=8)
    axes.set(ylabel="per second", title=f"Ceilings and tracing at concurrency {ref}")
    for position, value in enumerate(values):
        axes.annotate(f"{value:,.0f}", (position, value), ha="center", va="bottom", fontsize=8)
    axes.grid(alpha=0.3, axis="y")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.pipeline.plot REPORT_JSON OUTPUT_PNG")
    draw(decode(Path(args[0]).read_bytes()), Path(args[1]))


if __name__ == "__main__":
    main()
