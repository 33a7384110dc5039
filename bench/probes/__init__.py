"""Standalone measurement tools, each `python -m bench.probes.<name>`: one figure each, outside
`just bench` (see bench/README.md)."""
