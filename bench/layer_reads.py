"""Ceiling 2: the same read through `cqlstar.aiocassandra`, on uvloop, without HTTP.

`concurrency` asyncio tasks each await `session.execute(prepared, (id,))` in a loop, so the same
number of reads is in flight as in the raw-driver ceiling; the difference between the two is what the
async layer costs (the driver-thread-to-event-loop hand-off, row construction, its spans). No tracer
provider is configured here, so the layer's spans go to OpenTelemetry's no-op tracer.

Run by the harness as a child process and prints one JSON object:

    python -m bench.layer_reads --keyspace cqlstar_bench --ids ids.txt --concurrency 64 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import time
import uuid
from collections.abc import Sequence
from typing import Any

import uvloop

from bench.procs import CpuMeter
from bench.raw_driver import ceiling_arguments, read_ids
from bench.statements import READ_USER
from bench.stats import latency_summary
from cqlstar.aiocassandra import AsyncCluster, AsyncSession


async def _reader(
    session: AsyncSession,
    statement: Any,
    ids: Sequence[uuid.UUID],
    *,
    sequence: itertools.count[int],
    deadline: float,
    latencies: list[float],
    errors: list[BaseException],
) -> None:
    while True:
        key = ids[next(sequence) % len(ids)]
        started = time.perf_counter()
        try:
            result = await session.execute(statement, (key,))
            result.one()
        except Exception as exc:  # counted and reported: a ceiling must not die on one failure
            errors.append(exc)
        now = time.perf_counter()
        if now > deadline:
            return
        latencies.append(now - started)


async def measure(
    session: AsyncSession,
    statement: Any,
    ids: Sequence[uuid.UUID],
    concurrency: int,
    seconds: float,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[BaseException] = []
    sequence = itertools.count()
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(
            _reader(
                session,
                statement,
                ids,
                sequence=sequence,
                deadline=deadline,
                latencies=latencies,
                errors=errors,
            )
            for _ in range(concurrency)
        )
    )
    return {
        "reads": len(latencies),
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "duration_s": round(seconds, 3),
        "reads_per_second": round(len(latencies) / seconds, 1),
        **latency_summary(latencies),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cluster = AsyncCluster(args.hosts.split(","), port=args.port)
    try:
        session = await cluster.connect(args.keyspace)
        statement = await session.prepare(READ_USER, idempotent=True)
        ids = read_ids(args.ids)
        if args.warmup > 0:
            await measure(session, statement, ids, args.concurrency, args.warmup)
        meter = CpuMeter({"cassandra": args.cassandra_pid})
        cpu_before = _own_cpu_seconds()
        meter.start()
        result = await measure(session, statement, ids, args.concurrency, args.seconds)
        result["cpu_seconds"] = {
            "client": round(_own_cpu_seconds() - cpu_before, 3),
            **meter.stop(),
        }
        result["concurrency"] = args.concurrency
        await session.close()
    finally:
        await cluster.shutdown()
    return result


def main(argv: list[str] | None = None) -> None:
    args = ceiling_arguments(__doc__).parse_args(argv)
    result = uvloop.run(run(args))
    print(json.dumps(result), flush=True)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
