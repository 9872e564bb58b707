"""The four pools of ``leveret worker``: prefork, threads, asyncio, solo.

Each runs plain and ``async def`` tasks, reports failures, and enforces
time limits in its own way (a hung prefork process is replaced)."""

from __future__ import annotations

import uuid

import pytest

from leveret.client import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError

from ..client_fixtures import leveret_worker

POOLS = {'prefork': 2, 'threads': 2, 'asyncio': 10, 'solo': 1}
TIMEOUT = 60


@pytest.fixture(scope='module')
def queues(broker, tmp_path_factory):
    logs = tmp_path_factory.mktemp('pools')
    suffix = uuid.uuid4().hex[:8]
    names = {pool: f'pool-{pool}-{suffix}' for pool in POOLS}
    workers = [leveret_worker('lv_tasks', broker.url, names[pool], logs / f'{pool}.log',
                              pool=pool, concurrency=concurrency, wait=False)
               for pool, concurrency in POOLS.items()]
    try:
        for worker in workers:
            worker.wait_for_log(r'ready\.')
        yield names
    finally:
        for worker in workers:
            worker.stop()



every_pool = pytest.mark.parametrize('pool', list(POOLS))


@every_pool
def test_plain_functions_run(app, queues, pool):
    assert app.send_task('interop.add', (20, 22), queue=queues[pool]).get(TIMEOUT) == 42


@every_pool
def test_async_def_tasks_run(app, queues, pool):
    assert app.send_task('interop.asleep', (0.05,), queue=queues[pool]).get(TIMEOUT) == 'awake'
    assert app.send_task('interop.gather', (5, 0.05), queue=queues[pool]).get(TIMEOUT) == 5


@every_pool
def test_failures_are_reported(app, queues, pool):
    result = app.send_task('interop.fail', ('from the pool',), queue=queues[pool])
    with pytest.raises(ValueError, match='from the pool'):
        result.get(TIMEOUT)


@every_pool
def test_the_soft_time_limit_is_raised_inside_the_task(app, queues, pool):
    result = app.send_task('interop.soft_limited', (30,), queue=queues[pool])
    assert result.get(TIMEOUT) == 'soft limit reached'


def test_an_async_task_past_its_soft_limit_is_cancelled(app, queues):
    result = app.send_task('interop.asoft_limited', (30,), queue=queues['asyncio'])
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(TIMEOUT)


@pytest.mark.parametrize('pool,task', [('prefork', 'interop.hard_limited'),
                                       ('threads', 'interop.hard_limited'),
                                       ('solo', 'interop.hard_limited'),
                                       ('asyncio', 'interop.ahard_limited')])
def test_the_hard_time_limit_fails_the_task(app, queues, pool, task):
    with pytest.raises(TimeLimitExceeded):
        app.send_task(task, (30,), queue=queues[pool]).get(TIMEOUT)
    # The worker carries on.
    assert app.send_task('interop.add', (1, 2), queue=queues[pool]).get(TIMEOUT) == 3


def _pool_pids(app, queue, rounds=6):
    results = [app.send_task('interop.sleep', (0.2,), queue=queue) for _ in range(rounds)]
    return {r.get(TIMEOUT) for r in results}


def test_a_hung_prefork_process_is_replaced(app, queues):
    before = _pool_pids(app, queues['prefork'])
    with pytest.raises(TimeLimitExceeded):
        app.send_task('interop.hard_limited', (60,), queue=queues['prefork']).get(TIMEOUT)
    after = _pool_pids(app, queues['prefork'])
    assert len(after) == 2 and after != before


def test_a_process_that_dies_fails_its_task(app, queues):
    with pytest.raises(WorkerLostError, match='exitcode 3'):
        app.send_task('interop.die', (), queue=queues['prefork']).get(TIMEOUT)
    assert app.send_task('interop.add', (2, 2), queue=queues['prefork']).get(TIMEOUT) == 4


def test_the_asyncio_pool_runs_coroutines_concurrently(app, queues):
    results = [app.send_task('interop.rendezvous', (10, 30), queue=queues['asyncio'])
               for _ in range(10)]
    assert [r.get(TIMEOUT) for r in results] == [True] * 10


def test_the_threads_pool_runs_tasks_concurrently(app, queues):
    results = [app.send_task('interop.rendezvous', (2, 30), queue=queues['threads'])
               for _ in range(2)]
    assert [r.get(TIMEOUT) for r in results] == [True, True]
