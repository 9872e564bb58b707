"""Rate limits in the bundled worker, with Celery's token buckets: per task,
from the task and task_annotations, changed by ``control rate_limit``; a
limited task waits without holding up the others."""

from __future__ import annotations

import pytest

from ..conftest import BrokerProcess
from ..processes import wait_until
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue='limits',
                                  task_annotations={'sleep_for': {'rate_limit': '2/s'}})


@pytest.fixture(scope='module')
def worker(project: CeleryProject) -> CeleryWorker:
    # One slot, one prefetched message: a limited task that held its delivery
    # would stop everything else.
    return project.start_leveret_worker('-c', '1', '--prefetch-multiplier', '1',
                                        name='limits')


def test_registered_shows_the_rate_limits(project, worker) -> None:
    registered = project.app.control.inspect(destination=[worker.nodename],
                                             timeout=10).registered()[worker.nodename]
    assert f'{project.task_name("limited")} [rate_limit=1/m]' in registered
    assert f'{project.task_name("sleep_for")} [rate_limit=2/s]' in registered   # annotation
    assert project.task_name('add') in registered


def test_a_limited_task_waits_without_blocking_the_others(project, worker) -> None:
    tasks = project.tasks
    limited = [tasks.limited.delay(f'limited-{i}') for i in range(3)]
    # The first has its token at once; the next waits a minute for its own.
    assert limited[0].get(timeout=30)['label'] == 'limited-0'
    assert tasks.add.delay(20, 22).get(timeout=30) == 42
    assert tasks.add.delay(1, 1).get(timeout=30) == 2
    assert [r.state for r in limited[1:]] == ['PENDING', 'PENDING']
    # Lifting the limit at run time lets the waiting ones run.
    replies = project.app.control.rate_limit(project.task_name('limited'), '0',
                                             destination=[worker.nodename], reply=True,
                                             timeout=10)
    assert replies == [{worker.nodename: {'ok': 'new rate limit set successfully'}}]
    assert [r.get(timeout=30)['label'] for r in limited[1:]] == ['limited-1', 'limited-2']


def test_tokens_come_at_the_rate(project, worker) -> None:
    results = [project.tasks.report.delay(f'rated-{i}') for i in range(3)]
    assert [r.get(timeout=30)['label'] for r in results] == ['rated-0', 'rated-1', 'rated-2']
    project.app.control.rate_limit(project.task_name('report'), '4/s',
                                   destination=[worker.nodename], reply=True, timeout=10)
    results = [project.tasks.report.delay(f'fast-{i}') for i in range(3)]
    started = [r.get(timeout=30)['started_at'] for r in results]
    # A token every 0.25 s: never sooner (a lower bound: a busy machine only adds).
    assert all(later - earlier >= 0.2 for earlier, later in
               zip(started, started[1:], strict=False))


def test_a_bad_rate_limit_and_an_unknown_task_get_celerys_errors(project, worker) -> None:
    control = project.app.control
    bad = control.rate_limit(project.task_name('add'), 'often', destination=[worker.nodename],
                             reply=True, timeout=10)
    assert bad[0][worker.nodename]['error'].startswith('Invalid rate limit string: ValueError(')
    unknown = control.rate_limit('no.such.task', '1/s', destination=[worker.nodename],
                                 reply=True, timeout=10)
    assert unknown == [{worker.nodename: {'error': 'unknown task'}}]


def test_worker_disable_rate_limits(celery_broker: BrokerProcess,
                                    celery_project_factory: ProjectFactory) -> None:
    free = celery_project_factory(celery_url(celery_broker), task_default_queue='unlimited',
                                  worker_disable_rate_limits=True)
    worker = free.start_leveret_worker('-c', '1', name='unlimited')
    try:
        results = [free.tasks.limited.delay(f'free-{i}') for i in range(3)]
        assert [r.get(timeout=30)['label'] for r in results] == ['free-0', 'free-1', 'free-2']
    finally:
        worker.stop()
    wait_until(lambda: not worker.alive())
