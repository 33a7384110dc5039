"""The hand-off of driver answers from the driver's I/O thread to an asyncio event loop.

This is the hottest path of the layer: every query, page and prepare passes through it once.

The driver completes a `ResponseFuture` on its own I/O thread (libev) and calls the callbacks
registered with `add_callback`/`add_errback` there. `LoopBridge` moves each answer onto the event
loop that awaits it, into an `asyncio.Future` created *before* the callbacks are registered (so an
answer that is already in when we register is delivered at once, by the driver, and never lost).

Why a queue instead of one `loop.call_soon_threadsafe` per answer: each `call_soon_threadsafe`
allocates a Handle and, on the stock asyncio loop, writes a byte to the loop's self-pipe (a syscall)
to wake it. Under load many answers arrive while the loop is already awake, so answers are appended
to a deque (thread-safe and allocation-light in CPython) and the loop is woken only when no drain is
already scheduled. Ordering argument, with the GIL making each step atomic: the producer appends
*then* reads the flag; the drain clears the flag *then* empties the queue. If a producer reads the
flag as set, the drain that will clear it has not yet cleared it, so that drain runs after the
append and sees the item. No lock is taken on this path.

A late answer for a future that is already done (its awaiting task was cancelled, or the request was
abandoned) is dropped in the drain: nothing is ever set on a done future.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["LoopBridge"]

_Item = tuple["asyncio.Future[Any]", Any, bool]


class LoopBridge:
    """Delivers driver answers into futures of one event loop; see the module docstring."""

    __slots__ = (
        "_append",
        "_call_soon_threadsafe",
        "_drain_cb",
        "_queue",
        "_scheduled",
        "deliver_error",
        "deliver_result",
        "loop",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: deque[_Item] = deque()
        self._append = self._queue.append
        self._scheduled = False
        self._call_soon_threadsafe = loop.call_soon_threadsafe
        # Bound once here: the driver stores (fn, args, kwargs) for every registration, and a fresh
        # bound method per call would be one more allocation on the hot path.
        self._drain_cb: Callable[[], None] = self._drain
        self.deliver_result: Callable[[Any, asyncio.Future[Any]], None] = self._deliver_result
        self.deliver_error: Callable[[BaseException, asyncio.Future[Any]], None] = (
            self._deliver_error
        )

    def watch(self, response_future: Any, fut: asyncio.Future[Any]) -> None:
        """Route the next answer of `response_future` (a driver ResponseFuture) into `fut`.

        `fut` must exist before this call; if the driver already has the answer, it calls us back
        right here, on this thread, and the answer still goes through the queue.
        """
        response_future.add_callback(self.deliver_result, fut)
        response_future.add_errback(self.deliver_error, fut)

    # The two driver-thread entry points. They must never raise into the driver: an exception in a
    # callback would be logged by the driver and turned into a second, bogus errback call.
    def _deliver_result(self, value: Any, fut: asyncio.Future[Any]) -> None:
        self._append((fut, value, False))
        if not self._scheduled:
            self._wake()

    def _deliver_error(self, exc: BaseException, fut: asyncio.Future[Any]) -> None:
        self._append((fut, exc, True))
        if not self._scheduled:
            self._wake()

    def _wake(self) -> None:
        self._scheduled = True
        try:
            self._call_soon_threadsafe(self._drain_cb)
        except RuntimeError:
            # The loop is closed: nobody can await these answers any more.
            self._scheduled = False
            self._queue.clear()

    def _drain(self) -> None:
        self._scheduled = False
        popleft = self._queue.popleft
        while True:
            try:
                fut, value, failed = popleft()
            except IndexError:
                return
            if fut.done():
                continue
            if failed:
                fut.set_exception(value)
            else:
                fut.set_result(value)
