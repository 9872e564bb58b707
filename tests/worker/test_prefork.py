"""The prefork pool on its own (real processes, no broker): start reports,
a job queued behind a short one, jobs taken back before they start, and
queued jobs handed back when their process dies."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from leveret.client import App, WorkerLostError
from leveret.client.messages import ResultMessage
from leveret.client.worker.execute import UNSTARTED, Job, Outcome
from leveret.client.worker.pools import prefork
from leveret.client.worker.pools.prefork import PreforkPool
from leveret.client.worker.tasks import registry_for

app = App('amqp://unused/')


@app.task(name='pool.pid')
def pid() -> int:
    return os.getpid()


@app.task(name='pool.wait_for')
def wait_for(path: str) -> str:
    """Quick when ``path`` exists; otherwise waits for it."""
    while not os.path.exists(path):
        time.sleep(0.01)
    return 'released'


@app.task(name='pool.die_if')
def die_if(path: str) -> str:
    if os.path.exists(path):
        os._exit(3)
    return 'alive'


@app.task(name='pool.size')
def size(data: str) -> int:
    return len(data)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, Any]] = []
        self.changed = asyncio.Event()

    def done(self, outcome: Outcome) -> None:
        self.events.append(('done', outcome.job_id, outcome))
        self.changed.set()

    def started(self, job_id: int, pid: int) -> None:
        self.events.append(('started', job_id, pid))
        self.changed.set()

    def outcome(self, job_id: int) -> Outcome | None:
        for kind, number, value in self.events:
            if kind == 'done' and number == job_id:
                return value
        return None

    def started_ids(self) -> list[int]:
        return [number for kind, number, _ in self.events if kind == 'started']

    async def wait_done(self, *job_ids: int, timeout: float = 30) -> list[Outcome]:
        async with asyncio.timeout(timeout):
            while any(self.outcome(j) is None for j in job_ids):
                self.changed.clear()
                await self.changed.wait()
        return [self.outcome(j) for j in job_ids]  # type: ignore[misc]


def job(job_id: int, name: str, *args: Any, time_limit: float | None = None) -> Job:
    return Job(job_id, name, list(args), {}, {'id': f'task-{job_id}', 'task': name}, {},
               'replies', f'task-{job_id}', 'test@host', time_limit=time_limit)


def with_pool(scenario: Callable[[PreforkPool, Recorder], Awaitable[None]],
              concurrency: int = 1) -> None:
    async def main() -> None:
        recorder = Recorder()
        pool = PreforkPool(registry_for(app), concurrency, asyncio.get_running_loop(),
                           recorder.done, recorder.started)
        pool.start()
        try:
            await scenario(pool, recorder)
        finally:
            pool.stop()
    asyncio.run(asyncio.wait_for(main(), 60))


def result_of(outcome: Outcome) -> Any:
    assert outcome.result_body is not None
    return ResultMessage.from_wire({}, outcome.result_body).value()


async def learn_short(pool: PreforkPool, recorder: Recorder, name: str, *args: Any,
                      job_id: int = 1000) -> None:
    """Run ``name`` once, so that the pool knows it is short."""
    pool.apply(job(job_id, name, *args))
    await recorder.wait_done(job_id)
    assert pool._runtimes[name] < prefork.PIPELINE_RUNTIME


def test_a_job_starts_before_it_ends_and_not_behind_an_unknown_task():
    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        assert pool.has_capacity()
        pool.apply(job(1, 'pool.pid'))
        assert not pool.has_capacity()  # nothing known about pool.pid yet
        [outcome] = await recorder.wait_done(1)
        assert recorder.events[0][:2] == ('started', 1)
        assert recorder.events[0][2] == outcome.pid == result_of(outcome)
        assert pool.has_capacity() and not pool.running

    with_pool(scenario)


def test_jobs_are_queued_behind_a_short_one_and_run_after_it(tmp_path):
    depth = prefork.PIPELINE_DEPTH

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.pid')
        for number in range(1, depth + 1):
            assert pool.has_capacity()
            pool.apply(job(number, 'pool.pid'))
        assert not pool.has_capacity()
        outcomes = await recorder.wait_done(*range(1, depth + 1))
        assert len({result_of(o) for o in outcomes}) == 1
        assert recorder.started_ids() == [1000, *range(1, depth + 1)]

    with_pool(scenario)


def test_no_more_is_queued_than_can_be_done_soon():
    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.pid')
        pool._runtimes['pool.pid'] = prefork.PIPELINE_RUNTIME * 0.6
        pool.apply(job(1, 'pool.pid'))
        assert pool.has_capacity()  # 0.6 of the budget ahead
        pool.apply(job(2, 'pool.pid'))
        assert not pool.has_capacity()  # 1.2 ahead
        await recorder.wait_done(1, 2)

    with_pool(scenario)


def test_a_queued_job_is_taken_back_before_it_starts(tmp_path):
    gate = tmp_path / 'gate'
    gate.touch()

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.wait_for', str(gate))
        gate.unlink()  # the next one waits
        pool.apply(job(1, 'pool.wait_for', str(gate)))
        pool.apply(job(2, 'pool.pid'))
        async with asyncio.timeout(30):
            while 1 not in recorder.started_ids():
                recorder.changed.clear()
                await recorder.changed.wait()
        assert pool.cancel_job(2)
        assert not pool.cancel_job(1)  # running: only terminate stops it
        await asyncio.sleep(0)  # the pool writes the cancel at the end of the loop turn
        gate.touch()  # the process reads the cancel when it is done with job 1
        released, unstarted = await recorder.wait_done(1, 2)
        assert result_of(released) == 'released'
        assert unstarted.state == UNSTARTED
        assert 2 not in recorder.started_ids()
        assert not pool.running

    with_pool(scenario)


def test_jobs_queued_behind_a_process_that_dies_come_back_unstarted(tmp_path):
    marker = tmp_path / 'die'

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.die_if', str(marker))
        first_pid = next(iter(pool.children))
        marker.touch()
        pool.apply(job(1, 'pool.die_if', str(marker)))
        pool.apply(job(2, 'pool.pid'))
        lost, unstarted = await recorder.wait_done(1, 2)
        assert unstarted.state == UNSTARTED
        assert lost.worker_lost and 'exitcode 3' in lost.summary
        with pytest.raises(WorkerLostError):
            raise result_of(lost)
        assert 2 not in recorder.started_ids()
        # A new process took the place; the job runs there.
        assert list(pool.children) != [first_pid] and pool.has_capacity()
        pool.apply(job(3, 'pool.pid'))
        [again] = await recorder.wait_done(3)
        assert result_of(again) == next(iter(pool.children))

    with_pool(scenario)


def test_every_queued_job_can_be_taken_back(tmp_path):
    gate = tmp_path / 'gate'
    gate.touch()

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.wait_for', str(gate))
        gate.unlink()
        numbers = range(1, 2 * prefork.PIPELINE_DEPTH + 1)
        for number in numbers:  # two processes: two running, the rest queued
            assert pool.has_capacity()
            pool.apply(job(number, 'pool.wait_for', str(gate)))
        assert not pool.has_capacity()
        async with asyncio.timeout(30):
            while len(recorder.started_ids()) < 3:  # the learning job and 1, 2
                recorder.changed.clear()
                await recorder.changed.wait()
        assert pool.cancel_waiting() == len(numbers) - 2
        gate.touch()
        outcomes = await recorder.wait_done(*numbers)
        assert [o.state for o in outcomes] == ['SUCCESS'] * 2 + [UNSTARTED] * (len(numbers) - 2)
        assert sorted(recorder.started_ids()) == [1, 2, 1000]

    with_pool(scenario, concurrency=2)


def test_a_big_job_behind_a_running_one_does_not_block_the_loop(tmp_path):
    gate = tmp_path / 'gate'
    gate.touch()
    data = 'x' * (4 << 20)  # far more than a pipe holds

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.wait_for', str(gate))
        gate.unlink()
        pool.apply(job(1, 'pool.wait_for', str(gate)))
        pool.apply(job(2, 'pool.size', data))
        await asyncio.sleep(0.2)  # the loop runs while the child cannot read
        assert pool.children[next(iter(pool.children))].outbox
        gate.touch()
        first, second = await recorder.wait_done(1, 2)
        assert result_of(first) == 'released' and result_of(second) == len(data)

    with_pool(scenario)


def test_the_hard_time_limit_runs_from_the_start(tmp_path):
    gate = tmp_path / 'gate'
    gate.touch()

    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.wait_for', str(gate))
        gate.unlink()
        pool.apply(job(1, 'pool.wait_for', str(gate), time_limit=0.5))
        pool.apply(job(2, 'pool.pid'))
        hung, unstarted = await recorder.wait_done(1, 2)
        assert 'TimeLimitExceeded' in hung.summary and not hung.worker_lost
        assert unstarted.state == UNSTARTED
        # Long now: nothing is queued behind this task any more.
        gate.touch()
        pool.apply(job(3, 'pool.wait_for', str(gate)))
        assert not pool.has_capacity()
        await recorder.wait_done(3)

    with_pool(scenario)


def test_pool_state_after_a_run_is_clean(tmp_path: Path):
    async def scenario(pool: PreforkPool, recorder: Recorder) -> None:
        await learn_short(pool, recorder, 'pool.pid')
        for number in range(1, 41):
            while not pool.has_capacity():
                recorder.changed.clear()
                await recorder.changed.wait()
            pool.apply(job(number, 'pool.pid'))
        outcomes = await recorder.wait_done(*range(1, 41))
        assert {result_of(o) for o in outcomes} <= set(pool.children)
        assert sorted(recorder.started_ids()) == sorted([1000, *range(1, 41)])
        assert not pool.running
        assert all(not c.jobs and c.running is None for c in pool.children.values())

    with_pool(scenario, concurrency=2)
