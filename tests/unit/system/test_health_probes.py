"""`run_checks`: concurrent `/health` requests share each dependency's probe in flight.

`/health` is open and not rate limited, and each probe asks a dependency something real (the
identity provider's JWKS over HTTP among them): one probe per request let any client make the
service call its issuer, Redis and Cassandra as often as it liked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cqlstar.system.health import run_checks


class SlowCheck:
    name = "slow"
    critical = False

    def __init__(self) -> None:
        self.probes = 0
        self.release = asyncio.Event()

    async def probe(self, timeout: float) -> dict[str, Any]:
        self.probes += 1
        await self.release.wait()
        return {"probe": self.probes}


async def test_concurrent_requests_share_one_probe_and_a_later_one_probes_again() -> None:
    check = SlowCheck()
    requests = [asyncio.create_task(run_checks([check])) for _ in range(20)]
    await asyncio.sleep(0.05)
    check.release.set()
    answers = await asyncio.gather(*requests)
    assert check.probes == 1
    assert all(status == "healthy" for status, _ in answers)
    assert {results["slow"].details["probe"] for _, results in answers} == {1}  # type: ignore[index]
    # Once answered, the next request asks the dependency again: nothing is cached.
    _, results = await run_checks([check])
    assert check.probes == 2
    assert results["slow"].details == {"probe": 2}


async def test_a_request_that_goes_away_does_not_cancel_the_shared_probe() -> None:
    check = SlowCheck()
    leaving = asyncio.create_task(run_checks([check]))
    staying = asyncio.create_task(run_checks([check]))
    await asyncio.sleep(0.05)
    leaving.cancel()
    await asyncio.sleep(0)
    check.release.set()
    _, results = await staying
    assert results["slow"].status == "up"
    assert check.probes == 1
