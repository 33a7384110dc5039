"""Each private driver internal the async layer uses (`aiocassandra._driver`), checked against the
installed cassandra-driver on a real node: a driver upgrade that moves one of them fails here."""

from __future__ import annotations

import asyncio
from typing import Any

from cassandra.pool import Host
from cassandra.query import PreparedStatement, SimpleStatement

from cqlstar.aiocassandra import AsyncSession, _driver


async def _answer(session: AsyncSession, response_future: Any) -> Any:
    fut = asyncio.get_running_loop().create_future()
    session._bridge_for(asyncio.get_running_loop()).watch(response_future, fut)
    return await fut


async def test_paging_state_and_column_names_of_a_page(
    aio_session: AsyncSession, small_table: str
) -> None:
    statement = SimpleStatement("SELECT c, v FROM small WHERE k = 1", fetch_size=100)
    first = await aio_session.execute(statement)
    future = first.response_future
    state = _driver.paging_state(future)
    assert isinstance(state, bytes)
    assert state  # 250 rows in pages of 100: there is more
    assert _driver.column_names(future) == ["c", "v"]
    resumed = await aio_session.execute(statement, paging_state=state)
    assert [row[0] for row in resumed.current_rows][:1] == [100]


async def test_the_last_page_has_no_paging_state(
    aio_session: AsyncSession, small_table: str
) -> None:
    result = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    assert _driver.paging_state(result.response_future) is None


async def test_attempted_host_and_pooled_hosts_are_driver_hosts(
    aio_session: AsyncSession, small_table: str
) -> None:
    result = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    host = _driver.attempted_host(result.response_future)
    assert isinstance(host, Host)
    pooled = _driver.pooled_hosts(aio_session.driver_session)
    assert host in pooled


async def test_release_timer_clears_the_timer_the_driver_keeps(
    aio_session: AsyncSession, small_table: str
) -> None:
    statement = SimpleStatement("SELECT c FROM small WHERE k = 1", fetch_size=100)
    future = aio_session.driver_session.execute_async(statement, timeout=5.0)
    await _answer(aio_session, future)
    assert future._timer is not None  # what the fence relies on: the driver keeps it
    _driver.release_timer(future)
    assert future._timer is None


async def test_restart_request_timer_gives_the_next_page_a_fresh_timer(
    aio_session: AsyncSession, small_table: str
) -> None:
    statement = SimpleStatement("SELECT c FROM small WHERE k = 1", fetch_size=100)
    future = aio_session.driver_session.execute_async(statement, timeout=5.0)
    await _answer(aio_session, future)
    first_timer = future._timer
    _driver.restart_request_timer(future, 2.5)
    assert future.timeout == 2.5
    assert future._timer is None
    future.clear_callbacks()
    future.start_fetching_next_page()
    assert future._timer is not None  # armed again by the driver for this page
    assert future._timer is not first_timer
    await _answer(aio_session, future)


async def test_prepare_without_blocking_builds_the_drivers_prepared_statement(
    aio_session: AsyncSession, small_table: str
) -> None:
    driver_session = aio_session.driver_session
    cql = "SELECT v FROM small WHERE k = ? AND c = ?"
    request = _driver.new_prepare_request(driver_session, cql, 5.0)
    request.send_request()
    response = await _answer(aio_session, request)
    prepared = _driver.prepared_statement_from(response, cql, driver_session.cluster)
    assert isinstance(prepared, PreparedStatement)
    assert prepared.query_string == cql
    row = (await aio_session.execute(prepared, (1, 7))).one()
    assert row is not None
    assert row[0] == "v7"


async def test_retry_count_is_the_drivers_count_of_retries(
    aio_session: AsyncSession, small_table: str
) -> None:
    result = await aio_session.execute("SELECT c FROM small WHERE k = 2")
    assert _driver.retry_count(result.response_future) == 0
    assert "_query_retries" in vars(type(result.response_future))  # the field the count reads


async def test_speculative_plan_is_the_plan_the_policy_made(
    aio_session: AsyncSession, small_table: str
) -> None:
    statement = SimpleStatement("SELECT c FROM small WHERE k = 2", is_idempotent=True)
    future = aio_session.driver_session.execute_async(statement, timeout=5.0)
    await _answer(aio_session, future)
    # The default profile speculates nothing: the driver's own no-op plan, still in its field.
    assert _driver.speculative_plan(future) is not None
    assert "_spec_execution_plan" in vars(type(future))
