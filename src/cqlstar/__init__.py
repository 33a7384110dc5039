"""cqlstar: a Litestar service over Apache Cassandra, traced with OpenTelemetry."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cqlstar")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
