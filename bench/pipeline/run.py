"""`just bench`: one run that measures the service, its ceilings and its memory side by side.

    uv run python -m bench.pipeline       (what `just bench` runs; BENCH_* variables, see
                                           bench.harness.config)

Provisioning first (wrk, found on PATH; the Cassandra node; the bench keyspace and its id pool),
then the phases of `bench.pipeline.phases` in order. A phase that fails is reported (console,
`notes` in the report) and the run goes on with the next; the exit status is non-zero when any
phase failed. The report is written either way.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import partial
from pathlib import Path

from bench.harness.config import BenchConfig
from bench.harness.console import elapsed_s, say
from bench.harness.machine import machine_facts
from bench.harness.provision import provision_dataset
from bench.harness.wrk import find_wrk, wrk_version
from bench.pipeline.context import Journal, RunContext
from bench.pipeline.findings import Findings
from bench.pipeline.output import clear_output, write_report
from bench.pipeline.phases import PHASES
from bench.pipeline.ratios import ceilings, compute_ratios, evaluate_targets
from bench.pipeline.report import Report


def main() -> int:
    config = BenchConfig.from_env()
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    clear_output(config.output)
    journal = Journal()
    say(
        f"{len(config.scenarios)} scenario group(s), {config.seconds} s per measurement at "
        f"concurrency {', '.join(map(str, config.concurrency))}; output in {config.output}"
    )
    ctx = journal.attempt("provision", lambda: provision(config, journal))
    findings = Findings()
    if ctx is not None:
        for phase in PHASES:
            if phase.wanted(config):
                findings += ctx.attempt(phase.name, partial(phase.measure, ctx)) or Findings()
    report = build_report(ctx, config, findings, journal, started_at=started_at)
    report = write_report(report, config.output)
    summarise(report, config.output)
    return 1 if journal.failed_phases else 0


def provision(config: BenchConfig, journal: Journal) -> RunContext:
    wrk = find_wrk()
    return RunContext(config, wrk, provision_dataset(config, journal.note), journal)


def build_report(
    ctx: RunContext | None,
    config: BenchConfig,
    findings: Findings,
    journal: Journal,
    *,
    started_at: str,
) -> Report:
    """The report of what was measured; `ctx` is None when provisioning failed."""
    measured = ceilings(
        config.reference_concurrency,
        findings.raw_driver,
        findings.async_layer,
        findings.http_floor,
    )
    ratios = compute_ratios(
        findings.scenarios, measured, findings.streaming, findings.auth, findings.limits
    )
    return Report(
        started_at=started_at,
        duration_s=elapsed_s(),
        command=command_line(),
        settings=config.settings(),
        machine=machine_facts(),
        cassandra_version=ctx.dataset.cassandra_version if ctx else "unknown",
        load_generator=wrk_version(ctx.wrk) if ctx else None,
        scenarios=findings.scenarios,
        ceilings=measured,
        ratios=ratios,
        targets=evaluate_targets(ratios),
        **findings.sections(),
        notes=tuple(journal.notes),
        failed_phases=tuple(journal.failed_phases),
    )


def command_line() -> str:
    assignments = [
        f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_") and v.strip()
    ]
    return " ".join([*assignments, "just bench"])


def summarise(report: Report, output: Path) -> None:
    say(f"report: {output / 'report.md'} (+ report.json, report.png)")
    for target in report.targets:
        shown = "not measured" if target.value is None else f"{target.value:,.3f}"
        verdict = {True: "met", False: "NOT met", None: ""}[target.met]
        say(f"  {target.target}: {shown} (goal {target.goal}) {verdict}")
    if report.failed_phases:
        say(f"failed phases: {', '.join(report.failed_phases)}")
