"""The benchmark, in three parts: `bench.pipeline` is what `just bench` runs (one run that measures
the service, its ceilings and its memory, and writes `bench/results/latest/report.*`);
`bench.probes` are standalone tools (`python -m bench.probes.<name>`) that measure one thing each;
`bench.harness` is what both stand on: serving the app, driving wrk, reading CPU and memory from
/proc, the dataset, the span receivers and the ceiling workloads. See bench/README.md.
"""
