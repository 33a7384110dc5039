"""The driver-thread to event-loop hand-off, driven from real threads."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from cqlstar.aiocassandra._bridge import LoopBridge


async def test_results_and_errors_from_many_threads() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    futures = [loop.create_future() for _ in range(2000)]

    def produce(chunk: list[tuple[int, asyncio.Future[Any]]]) -> None:
        for i, fut in chunk:
            if i % 7 == 0:
                bridge.deliver_error(ValueError(i), fut)
            else:
                bridge.deliver_result(i, fut)

    indexed = list(enumerate(futures))
    threads = [threading.Thread(target=produce, args=(indexed[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    results = await asyncio.gather(*futures, return_exceptions=True)
    for thread in threads:
        thread.join()
    for i, result in enumerate(results):
        if i % 7 == 0:
            assert isinstance(result, ValueError)
            assert result.args == (i,)
        else:
            assert result == i


async def test_late_answers_for_done_futures_are_dropped() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    cancelled = loop.create_future()
    cancelled.cancel()
    answered = loop.create_future()
    answered.set_result("first")
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        await asyncio.to_thread(bridge.deliver_result, "late", cancelled)
        await asyncio.to_thread(bridge.deliver_error, RuntimeError("late"), answered)
        # The bridge drains in order: once a later answer has arrived, the late ones were handled
        # (and anything they raised went to the exception handler).
        probe = loop.create_future()
        await asyncio.to_thread(bridge.deliver_result, "probe", probe)
        assert await asyncio.wait_for(probe, 1) == "probe"
    finally:
        loop.set_exception_handler(previous)
    assert answered.result() == "first"
    assert errors == []


async def test_a_none_result_is_delivered() -> None:
    # Writes complete with None: it must arrive as a result, not be mistaken for "nothing yet".
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    fut = loop.create_future()
    bridge.deliver_result(None, fut)
    assert await asyncio.wait_for(fut, 1) is None


def test_a_closed_loop_does_not_raise_into_the_driver() -> None:
    loop = asyncio.new_event_loop()
    bridge = LoopBridge(loop)
    fut = loop.create_future()
    loop.close()
    bridge.deliver_result("x", fut)  # must not raise
    bridge.deliver_error(RuntimeError("x"), fut)
    assert not fut.done()


class _FakeResponseFuture:
    """Just the registration surface of the driver's ResponseFuture, finished before watch()."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def add_callback(self, fn: Any, *args: Any) -> None:
        fn(self.result, *args)

    def add_errback(self, fn: Any, *args: Any) -> None:
        pass


@pytest.mark.parametrize("result", [None, [], ["row"]])
async def test_watch_after_completion_still_delivers(result: Any) -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop)
    fut = loop.create_future()
    bridge.watch(_FakeResponseFuture(result), fut)
    assert await asyncio.wait_for(fut, 1) == result
