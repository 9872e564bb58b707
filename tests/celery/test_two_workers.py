"""Two workers on one queue: tasks are shared, both answer broadcasts, they mingle."""

from __future__ import annotations

import json

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue='shared')


@pytest.fixture(scope='module')
def workers(project: CeleryProject) -> list[CeleryWorker]:
    first = project.start_worker('-P', 'prefork', '-c', '1', name='first')
    second = project.start_worker('-P', 'solo', '-c', '1', name='second')
    return [first, second]


def test_the_second_worker_meets_the_first_at_startup(workers: list[CeleryWorker]) -> None:
    assert 'mingle: sync with 1 nodes' in workers[1].log()


def test_tasks_on_a_shared_queue_reach_both_workers(project: CeleryProject,
                                                    workers: list[CeleryWorker]) -> None:
    results = [project.tasks.report_then_sleep.delay(f'task-{i}', 0.2) for i in range(12)]
    entries = [result.get(timeout=30) for result in results]
    assert {entry['hostname'] for entry in entries} == {w.nodename for w in workers}


def test_a_broadcast_ping_gets_a_pong_from_each_worker(project: CeleryProject,
                                                       workers: list[CeleryWorker]) -> None:
    run = project.run('inspect', 'ping', '-d', ','.join(w.nodename for w in workers),
                      '--timeout', '10', '--json')
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {w.nodename: {'ok': 'pong'} for w in workers}
