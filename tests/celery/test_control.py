"""Remote control: the celery CLI's inspect, control and status, and revoke."""

from __future__ import annotations

import json
import subprocess

import pytest
from celery.exceptions import TaskRevokedError

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url, queue_counts

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue='control')


@pytest.fixture(scope='module', autouse=True)
def worker(project: CeleryProject) -> CeleryWorker:
    # prefork: the main process answers control commands while a child runs a task.
    return project.start_worker('-P', 'prefork', '-c', '2', name='control')


def succeeded(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, f'exit {run.returncode}\n{run.stdout}\n{run.stderr}'
    return run.stdout


def test_inspect_ping_gets_a_pong(project: CeleryProject, worker: CeleryWorker) -> None:
    # With a destination the command returns as soon as that node has replied.
    out = succeeded(project.run('inspect', 'ping', '-d', worker.nodename, '--timeout', '10',
                                '--json'))
    assert json.loads(out) == {worker.nodename: {'ok': 'pong'}}


def test_app_control_ping_gets_a_pong(project: CeleryProject, worker: CeleryWorker) -> None:
    replies = project.app.control.ping(destination=[worker.nodename], timeout=10)
    assert replies == [{worker.nodename: {'ok': 'pong'}}]


def test_celery_status_lists_the_worker(project: CeleryProject, worker: CeleryWorker) -> None:
    # No destination: the command collects replies for the whole timeout.
    out = succeeded(project.run('status', '--timeout', '3'))
    assert worker.nodename in out
    assert '1 node online.' in out


def test_inspect_active_lists_the_running_task(project: CeleryProject,
                                               worker: CeleryWorker) -> None:
    result = project.tasks.report_then_sleep.delay('active', 4)
    project.wait_for_records(lambda records: any(r['id'] == result.id for r in records))
    out = succeeded(project.run('inspect', 'active', '-d', worker.nodename, '--timeout', '10',
                                '--json'))
    active = json.loads(out)[worker.nodename]
    assert [task['id'] for task in active] == [result.id]
    assert active[0]['name'] == project.task_name('report_then_sleep')
    assert result.get(timeout=20)['label'] == 'active'


def test_control_rate_limit_is_acknowledged(project: CeleryProject,
                                            worker: CeleryWorker) -> None:
    out = succeeded(project.run('control', 'rate_limit', project.task_name('add'), '100/m',
                                '-d', worker.nodename, '--timeout', '10', '--json'))
    (reply,) = json.loads(out)
    assert 'new rate limit set successfully' in reply[worker.nodename]['ok']
    assert project.tasks.add.delay(1, 2).get(timeout=20) == 3


def test_revoking_a_countdown_task_stops_it_from_running(project: CeleryProject) -> None:
    result = project.tasks.report.apply_async(('revoked',), countdown=2)
    result.revoke()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=20)
    assert [r for r in project.records() if r['id'] == result.id] == []


def test_revoking_with_terminate_stops_a_running_task(project: CeleryProject) -> None:
    result = project.tasks.report_then_sleep.delay('terminated', 30)
    project.wait_for_records(lambda records: any(r['id'] == result.id for r in records))
    result.revoke(terminate=True)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=20)
    # The pool replaced its child and the worker carries on.
    assert project.tasks.add.delay(2, 3).get(timeout=20) == 5


def test_celery_purge_empties_the_queue(project: CeleryProject, unique_queue: str) -> None:
    for i in range(3):
        project.tasks.add.apply_async((i, i), queue=unique_queue)   # no worker consumes it
    assert queue_counts(project.broker_url, unique_queue) == (3, 0)
    out = succeeded(project.run('purge', '-f', '-Q', unique_queue))
    assert 'Purged 3 messages' in out
    assert queue_counts(project.broker_url, unique_queue) == (0, 0)
