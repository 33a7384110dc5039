"""`just bench`: measures the service, its ceilings and its memory in one run.

The harness (`python -m bench.run`) provisions what it needs (wrk, the local Cassandra node, a seeded
keyspace of its own, granian serving the app), drives HTTP load with wrk, measures the raw driver and
the async layer as ceilings in plain Python processes, and writes `bench/results/latest/report.json`,
`report.md` and `report.png`. Settings come from `BENCH_*` environment variables (see `bench.harness.config`).
"""
