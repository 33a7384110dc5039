"""Reading py-spy's collapsed stacks: the share of samples per component of the service, and the
hottest frames (`bench.probes.profile` writes the summary)."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable

# Innermost match wins, so the order only matters for paths two patterns could both claim.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("logging", r"^(logging/|cqlstar/telemetry/logs\.py)"),
    ("opentelemetry sdk", r"^(trace/|attributes/|util/__init__\.py|context/|sdk/|propagate/)"),
    ("anyio (litestar dependency task groups)", r"^anyio/"),
    ("cassandra-driver", r"^cassandra/"),
    ("uuid (driver decoding)", r"^uuid\.py"),
    ("cqlstar.aiocassandra", r"^cqlstar/aiocassandra/"),
    ("cqlstar.users", r"^cqlstar/users/"),
    ("cqlstar.telemetry http middleware", r"^cqlstar/telemetry/http\.py"),
    ("cqlstar.telemetry other", r"^cqlstar/telemetry/"),
    ("cqlstar.web", r"^cqlstar/web/"),
    ("litestar dependency injection", r"^litestar/(_kwargs|_signature|di\.py)"),
    ("litestar response", r"^litestar/response/"),
    ("litestar other", r"^litestar/"),
    ("asyncio", r"^asyncio/"),
    ("granian", r"^granian/"),
)
_FRAME_FILE = re.compile(r"\(([^:()]+):\d+\)")


def component_of(frame: str) -> str | None:
    match = _FRAME_FILE.search(frame)
    if match is None:
        return None
    path = match.group(1)
    for name, pattern in COMPONENTS:
        if re.search(pattern, path):
            return name
    return f"other ({path})"


def read_collapsed(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """py-spy's raw format: `frame;frame;...;frame count` per line, outermost frame first."""
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if count.isdigit():
            stacks.append((stack.split(";") if stack else [], int(count)))
    return stacks


def attribute(stacks: list[tuple[list[str], int]]) -> tuple[int, collections.Counter[str]]:
    """Samples per component, by the innermost frame that names one."""
    shares: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        owner = next((c for f in reversed(frames) if (c := component_of(f))), "native / no frame")
        shares[owner] += count
    return total, shares


def hottest_frames(stacks: list[tuple[list[str], int]], top: int) -> list[tuple[str, int]]:
    own: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        if frames:
            own[frames[-1]] += count
    return own.most_common(top)


def summarise(stacks: list[tuple[list[str], int]], header: str, top: int = 15) -> str:
    total, shares = attribute(stacks)
    lines = [
        header,
        "",
        f"{total} samples with the GIL held",
        "",
        "| component | share |",
        "|---|---|",
    ]
    lines += [f"| {name} | {100 * n / total:.1f}% |" for name, n in shares.most_common()]
    lines += ["", "Hottest frames (own time):", ""]
    lines += [f"- {100 * n / total:.1f}% {frame}" for frame, n in hottest_frames(stacks, top)]
    return "\n".join(lines) + "\n"
