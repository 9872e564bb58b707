"""{Celery client, Leveret client} x {Celery worker, Leveret worker}, all over
Leveret: results, failures, retries and countdowns work in every cell.

The Leveret worker appears twice: running a Leveret app, and running the
Celery app unchanged. One worker of each kind serves the whole module.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leveret.client import App

from ..client_fixtures import (
    celery_client,
    celery_worker,
    close_celery_client,
    leveret_worker,
    wait_until,
)

WORKERS = ['celery', 'leveret', 'leveret-runs-celery-app']
CLIENTS = ['celery', 'leveret']
TIMEOUT = 60


@pytest.fixture(scope='module')
def queues(broker, tmp_path_factory):
    logs = tmp_path_factory.mktemp('interop')
    suffix = uuid.uuid4().hex[:8]
    names = {kind: f'interop-{kind}-{suffix}' for kind in WORKERS}
    env = {'CELERY_BROKER_URL': broker.url}
    started = [
        celery_worker('cel_tasks', broker.url, names['celery'], logs / 'celery.log',
                      pool='prefork', concurrency=2, env=env, wait=False),
        leveret_worker('lv_tasks', broker.url, names['leveret'], logs / 'leveret.log',
                       env=env, wait=False),
        leveret_worker('cel_tasks', broker.url, names['leveret-runs-celery-app'],
                       logs / 'leveret-celery.log', env=env, wait=False),
    ]
    try:
        for worker in started:
            worker.wait_for_log(r'ready\.')
        yield names
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope='module')
def clients(broker):
    celery = celery_client(broker.url)
    leveret = App(broker.url)
    yield {'celery': celery, 'leveret': leveret}
    close_celery_client(celery)
    leveret.close()


def send(clients, client: str, name: str, args: tuple, queue: str, **options):
    if client == 'celery':
        return clients['celery'].send_task(name, args=args, queue=queue, **options)
    return clients['leveret'].send_task(name, args, queue=queue, **options)


cells = pytest.mark.parametrize('client,worker', [(c, w) for c in CLIENTS for w in WORKERS])


@cells
def test_results_come_back(clients, queues, client, worker):
    result = send(clients, client, 'interop.add', (2, 3), queues[worker])
    assert result.get(timeout=TIMEOUT) == 5
    assert result.state == 'SUCCESS' and result.successful()


@cells
def test_failures_carry_the_exception(clients, queues, client, worker):
    result = send(clients, client, 'interop.fail', ('it broke',), queues[worker])
    with pytest.raises(ValueError, match='it broke'):
        result.get(timeout=TIMEOUT)
    assert result.state == 'FAILURE'
    assert 'ValueError' in result.traceback


@cells
def test_retries_run_the_task_again(clients, queues, client, worker):
    result = send(clients, client, 'interop.flaky', (2,), queues[worker])
    assert result.get(timeout=TIMEOUT) == 2
    assert result.state == 'SUCCESS'


@cells
def test_countdown_delays_the_task(clients, queues, client, worker):
    sent = datetime.now(UTC)
    result = send(clients, client, 'interop.add', (1, 1), queues[worker], countdown=1)
    assert result.get(timeout=TIMEOUT) == 2
    # Never before its eta (a lower bound: a slow machine only makes it later).
    assert result.date_done >= sent + timedelta(seconds=0.9)


@cells
def test_the_task_sees_its_request(clients, queues, client, worker):
    result = send(clients, client, 'interop.request', (), queues[worker])
    request = result.get(timeout=TIMEOUT)
    assert request['id'] == result.id == request['root_id']
    assert request['retries'] == 0 and request['parent_id'] is None
    assert request['routing_key'] == queues[worker]


@pytest.mark.parametrize('worker', WORKERS)
def test_celery_chains_and_link_callbacks_run(clients, queues, worker, tmp_path):
    from celery import chain

    celery, queue = clients['celery'], queues[worker]

    def add(*args):
        return celery.signature('interop.add', args, queue=queue)

    result = chain(add(1, 2), add(10), add(100)).apply_async()
    assert result.get(timeout=TIMEOUT) == 113
    assert result.parent.get(timeout=TIMEOUT) == 13
    noted = tmp_path / 'noted'
    linked = add(20, 22).apply_async(
        link=celery.signature('interop.note', kwargs={'path': str(noted)}, queue=queue))
    assert linked.get(timeout=TIMEOUT) == 42
    wait_until(lambda: noted.exists() and noted.read_text() == '42\n', timeout=TIMEOUT)
