"""The in-process connection slots (the Redis ones are tested against a real Redis)."""

from __future__ import annotations

from cqlstar.realtime.limits import InProcessConnectionSlots


async def test_slots_per_subject() -> None:
    slots = InProcessConnectionSlots()
    assert [await slots.acquire("s", f"c{i}", 2) for i in range(3)] == [True, True, False]
    assert await slots.acquire("t", "c9", 2)
    await slots.release("s", "c0")
    assert await slots.acquire("s", "c3", 2)
    await slots.release("s", "unknown")
    await slots.release("nobody", "c0")
    assert not await slots.acquire("s", "c4", 2)
