"""The worker state: requests by state, revoked ids, totals, prefetch."""

from __future__ import annotations

import asyncio

from leveret.client.worker.state import PREFETCH_MAX, REVOKES_MAX, Prefetch, WorkerState

from .parts import Parts, request_for


def test_held_deliveries_raise_the_prefetch_count():
    prefetch = Prefetch(8)
    assert prefetch.value == 8
    assert prefetch.change(+1) and prefetch.change(+1)
    assert prefetch.value == 10
    assert prefetch.change(-1) and prefetch.value == 9
    prefetch.reset()
    assert prefetch.value == 8


def test_an_unlimited_prefetch_stays_unlimited():
    prefetch = Prefetch(0)
    assert not prefetch.change(+1)
    assert prefetch.value == 0


def test_past_what_qos_can_carry_the_prefetch_is_unlimited():
    prefetch = Prefetch(PREFETCH_MAX)
    assert prefetch.value == PREFETCH_MAX
    prefetch.change(+1)
    assert prefetch.value == 0


def test_revoked_ids_are_bounded_oldest_first():
    state = WorkerState(4)
    for i in range(REVOKES_MAX + 2):
        state.revoke(f'id-{i}')
    assert len(state.revoked) == REVOKES_MAX
    assert 'id-0' not in state.revoked and 'id-1' not in state.revoked
    assert f'id-{REVOKES_MAX + 1}' in state.revoked


def test_running_and_reserved_requests():
    async def scenario() -> None:
        parts = Parts()
        try:
            state = parts.state
            due, queued, running = (request_for(parts, delivery_tag=t) for t in (1, 2, 3))
            state.ready.append(due)
            state.active[1] = queued  # in the pool, not started
            running.time_start = 1.0
            state.active[2] = running
            assert state.running() == [running]
            assert state.reserved() == [due, queued]
            state.count_done('proj.add')
            state.count_done('proj.add')
            state.count_done('proj.mul')
            fields = state.heartbeat_fields()
            assert (fields['active'], fields['processed']) == (1, 3)
            assert len(fields['loadavg']) == 3
        finally:
            await parts.close()
    asyncio.run(scenario())


def test_job_ids_count_up_from_one():
    state = WorkerState(1)
    assert [state.next_job_id() for _ in range(3)] == [1, 2, 3]
