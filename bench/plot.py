"""Draws `report.png` from `report.json`: throughput, latency and the tracing/ceiling comparison.

    python -m bench.plot bench/results/latest/report.json bench/results/latest/report.png

Needs matplotlib; `bench.report` runs this module through `uv run --with matplotlib` when the
project's environment does not have it.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

_HTTP_SCENARIOS = ("get_user", "list_users", "create_user", "update_user")


def _series(entries: list[dict[str, Any]], name: str, key: str) -> tuple[list[int], list[float]]:
    points = sorted(
        (e["concurrency"], float(e[key])) for e in entries if e.get("name", name) == name
    )
    return [c for c, _ in points], [v for _, v in points]


def draw(report: dict[str, Any], png: Path) -> None:
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    ticker: Any = importlib.import_module("matplotlib.ticker")

    scenarios = report["scenarios"]
    ceilings = report["ceilings"]
    fig, (throughput, latency, bars) = plt.subplots(1, 3, figsize=(18, 5.5))

    for name in _HTTP_SCENARIOS:
        x, y = _series(scenarios, name, "requests_per_second")
        if x:
            throughput.plot(x, y, marker="o", label=name)
    for kind, key, style in (
        ("raw_driver", "reads_per_second", "k--"),
        ("async_layer", "reads_per_second", "k:"),
        ("http_floor", "requests_per_second", "k-."),
    ):
        x, y = _series(ceilings.get(kind, []), kind, key)
        if x:
            throughput.plot(x, y, style, marker="s", label=f"ceiling: {kind}")
    throughput.set(xscale="log", xlabel="concurrency", ylabel="per second", title="Throughput")
    levels = report["settings"]["concurrency"]
    throughput.set_xticks(levels, labels=levels)
    throughput.xaxis.set_minor_locator(ticker.NullLocator())
    throughput.set_ylim(bottom=0)
    throughput.legend(fontsize=8)
    throughput.grid(alpha=0.3)

    for index, name in enumerate(_HTTP_SCENARIOS):
        color = f"C{index}"
        x, p50 = _series(scenarios, name, "p50_ms")
        _, p99 = _series(scenarios, name, "p99_ms")
        if x:
            latency.plot(x, p99, marker="o", color=color, label=f"{name} p99")
            latency.plot(x, p50, marker=".", linestyle="--", color=color, label=f"{name} p50")
    latency.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="Latency")
    latency.set_xticks(levels, labels=levels)
    latency.xaxis.set_minor_locator(ticker.NullLocator())
    latency.legend(fontsize=7, ncol=2)
    latency.grid(alpha=0.3, which="both")

    ref = ceilings["reference_concurrency"]
    labels, values = [], []
    for label, value in (
        ("raw driver", ceilings.get("raw_driver_reads_per_second")),
        ("async layer", ceilings.get("async_layer_reads_per_second")),
        ("HTTP floor", ceilings.get("http_floor_requests_per_second")),
        *(
            (f"tracing\n{mode}", e["requests_per_second"])
            for mode in ("off", "default", "on", "sampled")
            for e in scenarios
            if e["name"] == f"get_user_tracing_{mode}"
        ),
    ):
        if value:
            labels.append(label)
            values.append(float(value))
    get_user = next(
        (e for e in scenarios if e["name"] == "get_user" and e["concurrency"] == ref), None
    )
    if get_user:
        labels.append("get_user\n(default)")
        values.append(float(get_user["requests_per_second"]))
    bars.bar(range(len(values)), values, color="C0")
    bars.set_xticks(range(len(values)), labels=labels, fontsize=8)
    bars.set(ylabel="per second", title=f"Ceilings and tracing at concurrency {ref}")
    for position, value in enumerate(values):
        bars.annotate(f"{value:,.0f}", (position, value), ha="center", va="bottom", fontsize=8)
    bars.grid(alpha=0.3, axis="y")

    fig.suptitle(
        f"cqlstar benchmark {report['started_at']} ({report['settings']['seconds']} s per measurement, "
        f"{report['machine']['cores']} cores)"
    )
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.plot REPORT_JSON OUTPUT_PNG")
    draw(json.loads(Path(args[0]).read_text()), Path(args[1]))


if __name__ == "__main__":
    main()
