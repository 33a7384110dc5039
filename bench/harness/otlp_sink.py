"""A minimal OTLP/gRPC trace receiver: the fallback when the project's collector is not available.

It accepts `TraceService/Export`, counts the spans, and drops them. Running in its own process keeps
its cost out of the service's CPU figures, as a real collector's would be. The harness reads the
count from the file named by `--count-file`, rewritten after every export.

    python -m bench.harness.otlp_sink --port 4317 --count-file spans.txt
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class CountingTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, count_file: Path) -> None:
        self._count_file = count_file
        self._lock = threading.Lock()
        self.spans = 0
        count_file.write_text("0\n")

    def Export(self, request: Any, context: Any) -> Any:
        received = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with self._lock:
            self.spans += received
            self._count_file.write_text(f"{self.spans}\n")
        return trace_service_pb2.ExportTraceServiceResponse()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count-file", type=Path, required=True)
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    # The generated gRPC module carries no annotations.
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        CountingTraceService(args.count_file), server
    )
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"otlp sink listening on 127.0.0.1:{args.port}", flush=True)
    stopped.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
