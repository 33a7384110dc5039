"""What the `just bench` pipeline and the probes both stand on: settings, serving the app, wrk, the
dataset, CPU and memory from /proc, span receivers and the ceiling workloads (see bench/README.md)."""
