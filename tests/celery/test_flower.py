"""Flower with the bundled worker (``-E``): the dashboard, the tasks and the
worker page (every tab) render, and Flower's worker actions (pool grow,
shrink and autoscale, add and cancel consumer, rate and time limits,
shutdown) act on it. Flower's broker page is not about the worker and is
left out."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from ..conftest import BrokerProcess, free_port
from ..processes import wait_until
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue='fl-tasks')


@pytest.fixture(scope='module')
def workers(project: CeleryProject) -> dict[str, CeleryWorker]:
    plain = project.start_leveret_worker('-E', '-c', '2', '-Q', 'fl-tasks', name='fl-plain',
                                         ready=False)
    scaled = project.start_leveret_worker('-E', '--autoscale', '3,1', '-Q', 'fl-scaled',
                                          name='fl-scaled', ready=False)
    plain.wait_ready()
    scaled.wait_ready()
    return {'plain': plain, 'scaled': scaled}


@pytest.fixture(scope='module')
def flower(project: CeleryProject, workers) -> str:
    port = free_port()
    process = project.spawn('flower', f'--port={port}', '--address=127.0.0.1', name='flower')
    url = f'http://127.0.0.1:{port}'
    wait_until(lambda: _status(f'{url}/healthcheck') == 200, timeout=60,
               message=lambda: process.log()[-3000:])
    # Flower learns of the workers from their events (heartbeats every 2 s).
    wait_until(lambda: all(w.nodename in _get(f'{url}/api/workers?refresh=1')
                           for w in workers.values()), timeout=60)
    return url


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except (urllib.error.URLError, ConnectionError):
        return 0


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read().decode()


def _post(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b'', method='POST')
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _stats(project: CeleryProject, node: str) -> dict[str, Any]:
    return project.app.control.inspect(destination=[node], timeout=10).stats()[node]


def test_the_dashboard_shows_the_workers(flower, workers) -> None:
    page = _get(f'{flower}/')
    for worker in workers.values():
        assert worker.nodename in page
    listed = json.loads(_get(f'{flower}/api/workers'))
    assert listed[workers['plain'].nodename]['stats']['pool']['max-concurrency'] == 2


def test_tasks_show_in_the_tasks_page_and_their_own(project, flower, workers) -> None:
    result = project.tasks.add.delay(20, 22)
    assert result.get(timeout=30) == 42
    # Task events reach Flower: the task is listed with its state and worker.
    tasks = wait_until(lambda: (t := json.loads(_get(f'{flower}/api/tasks'))).get(result.id)
                       and t[result.id]['state'] == 'SUCCESS' and t)
    assert tasks[result.id]['worker'] == workers['plain'].nodename
    assert tasks[result.id]['result'] == '42'
    assert _status(f'{flower}/tasks') == 200
    assert result.id in _get(f'{flower}/task/{result.id}')


def test_the_worker_page_and_every_tab(project, flower, workers) -> None:
    node = workers['plain'].nodename
    page = _get(f'{flower}/worker/{node}')
    for tab in ('tab-pool', 'tab-queues', 'tab-tasks', 'tab-limits', 'tab-config',
                'tab-system'):
        assert tab in page, tab
    assert 'fl-tasks' in page                       # queues
    assert project.task_name('report') in page      # tasks
    assert 'prefork:PreforkPool' in page            # pool
    assert 'task_default_queue' in page             # config
    assert 'maxrss' in page                         # system


def test_pool_grow_and_shrink_buttons(project, flower, workers) -> None:
    node = workers['plain'].nodename
    assert _post(f'{flower}/api/worker/pool/grow/{node}?n=1')[0] == 200
    wait_until(lambda: len(_stats(project, node)['pool']['processes']) == 3)
    assert _post(f'{flower}/api/worker/pool/shrink/{node}?n=1')[0] == 200
    wait_until(lambda: len(_stats(project, node)['pool']['processes']) == 2)


def test_autoscale_button(project, flower, workers) -> None:
    node = workers['scaled'].nodename
    assert _post(f'{flower}/api/worker/pool/autoscale/{node}?min=2&max=4')[0] == 200
    scaler = _stats(project, node)['autoscaler']
    assert (scaler['max'], scaler['min']) == (4, 2)
    # Without --autoscale Celery refuses, and Flower says so.
    assert _post(f'{flower}/api/worker/pool/autoscale/{workers["plain"].nodename}'
                 '?min=1&max=2')[0] == 403


def test_add_and_cancel_consumer_buttons(project, flower, workers) -> None:
    node = workers['plain'].nodename

    def queues() -> list[str]:
        reply = project.app.control.inspect(destination=[node], timeout=10).active_queues()
        return [q['name'] for q in reply[node]]

    assert _post(f'{flower}/api/worker/queue/add-consumer/{node}?queue=fl-extra')[0] == 200
    wait_until(lambda: 'fl-extra' in queues())
    assert project.tasks.add.apply_async((1, 1), queue='fl-extra').get(timeout=30) == 2
    assert _post(f'{flower}/api/worker/queue/cancel-consumer/{node}?queue=fl-extra')[0] == 200
    wait_until(lambda: 'fl-extra' not in queues())


def test_rate_and_time_limit_buttons(project, flower, workers) -> None:
    node, task = workers['plain'].nodename, project.task_name('sleep_for')
    status, _ = _post(f'{flower}/api/task/rate-limit/{task}?workername={node}&ratelimit=7/m')
    assert status == 200
    status, _ = _post(f'{flower}/api/task/timeout/{task}?workername={node}&soft=5&hard=9')
    assert status == 200
    registered = project.app.control.inspect(destination=[node], timeout=10).registered(
        'rate_limit', 'soft_time_limit', 'time_limit')[node]
    assert f'{task} [rate_limit=7/m soft_time_limit=5.0 time_limit=9.0]' in registered


def test_shutdown_button(project, flower, workers) -> None:
    worker = workers['scaled']
    assert _post(f'{flower}/api/worker/shutdown/{worker.nodename}')[0] == 200
    wait_until(lambda: not worker.alive(), timeout=60)
    assert worker.proc.returncode == 0
