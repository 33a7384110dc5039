"""How cqlstar is served: granian, ASGI interface, uvloop, bound where `Settings` say.

The one definition of the server's command line. `python -m cqlstar` (the `just serve` recipe, the
Docker image, the tests and the benchmark harness) reads `Settings.from_env()` first, so a malformed
HOST or PORT stops it with the settings' message before anything binds, then runs granian on
`settings.host`/`settings.port` through its embedding API (`granian.Granian`), the same server
object granian's own CLI builds from its flags.

Embedding rather than exec-ing the `granian` script loses nothing the project relies on: the
server installs the same SIGINT/SIGTERM handlers in this process, so as the container's PID 1 it
still receives `docker stop`'s SIGTERM, stops accepting, lets its workers drain and reaps them; the
workers are the same forked processes. The difference is that granian's own `GRANIAN_*`
environment variables are not read: what may vary (workers, backlog, the ASGI factory) is a
parameter of `serve` and a flag of `python -m cqlstar`, nothing else.

Imports only the settings and granian: the application is imported by each worker, through the
factory named in `ServeOptions.factory`, never by the process that parses the command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from granian import Granian
from granian.constants import Interfaces, Loops

from cqlstar.settings import Settings, SettingsError

if TYPE_CHECKING:
    # `Granian` is whichever of granian's servers this interpreter runs (processes or threads).
    from granian.server.common import AbstractServer

APP_FACTORY = "cqlstar.app:create_app"
# granian's own default queue of connections waiting to be accepted.
DEFAULT_BACKLOG = 1024
# granian silently raises a smaller backlog to this; refused here so that the flag means what it says.
MIN_BACKLOG = 128


class ServeOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What may differ between two ways of serving; the bench uses all three."""

    # `module:callable` returning an ASGI app; the benchmark serves its HTTP floor this way.
    factory: str = APP_FACTORY
    workers: int = 1
    backlog: int = DEFAULT_BACKLOG

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers={self.workers}: at least one worker serves")
        if self.backlog < MIN_BACKLOG:
            raise ValueError(f"backlog={self.backlog}: granian accepts {MIN_BACKLOG} or more")
        module, _, attribute = self.factory.partition(":")
        if not module or not attribute:
            raise ValueError(f"factory={self.factory!r}: expected module:callable")


def granian_server(settings: Settings, options: ServeOptions | None = None) -> AbstractServer[Any]:
    """The granian server for these settings, not yet serving."""
    options = options or ServeOptions()
    return Granian(
        options.factory,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
        factory=True,
        workers=options.workers,
        backlog=options.backlog,
    )


def serve(settings: Settings | None = None, options: ServeOptions | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then drain the workers and return."""
    granian_server(settings or Settings.from_env(), options).serve()


def serve_command(options: ServeOptions | None = None, python: str = sys.executable) -> list[str]:
    """The argv that runs `python -m cqlstar` with `options`, for callers starting a child process.

    HOST and PORT are not in it: the child reads them from its environment, as in production.
    """
    options = options or ServeOptions()
    command = [python, "-m", "cqlstar"]
    if options.factory != APP_FACTORY:
        command += ["--factory", options.factory]
    if options.workers != 1:
        command += ["--workers", str(options.workers)]
    if options.backlog != DEFAULT_BACKLOG:
        command += ["--backlog", str(options.backlog)]
    return command


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected 1 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cqlstar",
        description=(
            "Serve cqlstar under granian (ASGI, uvloop) on HOST:PORT from the environment; "
            "the other settings are read from the environment too (see README)."
        ),
    )
    parser.add_argument(
        "--workers", type=_positive, default=1, help="granian worker processes (default: 1)"
    )
    parser.add_argument(
        "--backlog",
        type=_positive,
        default=DEFAULT_BACKLOG,
        help=f"connections waiting to be accepted (default: {DEFAULT_BACKLOG})",
    )
    parser.add_argument(
        "--factory",
        default=APP_FACTORY,
        metavar="MODULE:CALLABLE",
        help=f"the ASGI application factory (default: {APP_FACTORY})",
    )
    return parser


def parse_options(argv: Sequence[str] | None = None) -> ServeOptions:
    """`ServeOptions` from `python -m cqlstar`'s flags; exits with a usage message on bad ones."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        return ServeOptions(
            factory=arguments.factory, workers=arguments.workers, backlog=arguments.backlog
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m cqlstar`: flags, then settings, then granian; configuration errors exit 2."""
    options = parse_options(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        # The settings' message names the variable; a traceback would only bury it.
        print(f"cqlstar: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if options.workers > 1 and settings.redis_url is None and options.factory == APP_FACTORY:
        # Rate limits, connection counts and broadcast live in-process without Redis: each worker
        # would keep its own, and every limit would silently multiply by the number of workers.
        # (Another factory, such as the benchmark's HTTP floor, keeps no such state.)
        print(
            f"cqlstar: --workers {options.workers} needs REDIS_URL: without it, rate limits, "
            "WebSocket connection counts and broadcasts are per process. Set REDIS_URL (e.g. "
            "`just redis`, then REDIS_URL=redis://127.0.0.1:6380/0) or serve one worker.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    serve(settings, options)
