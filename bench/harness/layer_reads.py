"""Ceiling 2: the same read through `cqlstar.aiocassandra`, on uvloop, without HTTP.

`concurrency` asyncio tasks each await `session.execute(prepared, (id,))` in a loop, so the same
number of reads is in flight as in the raw-driver ceiling; the difference between the two is what the
async layer costs (the driver-thread-to-event-loop hand-off, row construction, its spans). No tracer
provider is configured here, so the layer's spans go to OpenTelemetry's no-op tracer.

A child process of `just bench` (see `bench.harness.ceiling` for its command line and output).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import uuid
from collections.abc import Sequence
from typing import Any

import uvloop

from bench.harness import ceiling
from bench.harness.statements import READ_USER
from cqlstar.aiocassandra import AsyncCluster, AsyncSession


async def _reader(
    session: AsyncSession,
    statement: Any,
    ids: Sequence[uuid.UUID],
    *,
    sequence: itertools.count[int],
    deadline: float,
    reads: ceiling.Reads,
) -> None:
    while True:
        key = ids[next(sequence) % len(ids)]
        started = time.perf_counter()
        try:
            result = await session.execute(statement, (key,))
            result.one()
        except Exception as exc:  # counted and reported: a ceiling must not die on one failure
            reads.errors += 1
            reads.first_error = reads.first_error or repr(exc)
        now = time.perf_counter()
        if now > deadline:
            return
        reads.latencies.append(now - started)


async def measure(
    session: AsyncSession,
    statement: Any,
    ids: Sequence[uuid.UUID],
    concurrency: int,
    seconds: float,
) -> ceiling.Reads:
    reads = ceiling.Reads(seconds)
    sequence = itertools.count()
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(
            _reader(session, statement, ids, sequence=sequence, deadline=deadline, reads=reads)
            for _ in range(concurrency)
        )
    )
    return reads


async def run(args: argparse.Namespace) -> ceiling.CeilingResult:
    cluster = AsyncCluster(args.hosts.split(","), port=args.port)
    try:
        session = await cluster.connect(args.keyspace)
        statement = await session.prepare(READ_USER, idempotent=True)
        ids = ceiling.read_ids(args.ids)
        if args.warmup > 0:
            await measure(session, statement, ids, args.concurrency, args.warmup)
        with ceiling.CpuWindow(args.cassandra_pid) as window:
            reads = await measure(session, statement, ids, args.concurrency, args.seconds)
        await session.close()
    finally:
        await cluster.shutdown()
    return ceiling.ceiling_result(reads, args.concurrency, window.cpu_seconds)


def main(argv: list[str] | None = None) -> None:
    ceiling.emit(uvloop.run(run(ceiling.ceiling_arguments(__doc__).parse_args(argv))))


if __name__ == "__main__":
    main()
