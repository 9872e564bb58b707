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


# --- with the app's own result backend ---------------------------------------
# A Celery app whose results go to Redis or to a database (SQLAlchemy on
# sqlite), run by Celery's prefork worker and by the Leveret worker, each on
# a queue of its own; a Celery client with the same backend reads the results.

BACKEND_WORKERS = ['celery', 'leveret-runs-celery-app']
BACKENDS = ['redis', 'sqlite']


@pytest.fixture(scope='module')
def backend_cells(broker, redis_server, tmp_path_factory):
    """(backend, worker) -> a Celery client whose default queue is that worker's."""
    logs = tmp_path_factory.mktemp('backends')
    suffix = uuid.uuid4().hex[:8]
    started, cells = [], {}
    try:
        for db, backend in enumerate(BACKENDS, start=1):
            for worker in BACKEND_WORKERS:
                queue = f'backend-{backend}-{worker}-{suffix}'
                url = (f'{redis_server.url}/{db}' if backend == 'redis' else
                       f'db+sqlite:///{logs / f"{worker}.sqlite"}')
                env = {'CELERY_BROKER_URL': broker.url, 'CELERY_RESULT_BACKEND': url,
                       'CELERY_DEFAULT_QUEUE': queue}
                log = logs / f'{backend}-{worker}.log'
                if worker == 'celery':
                    started.append(celery_worker('cel_tasks', broker.url, queue, log,
                                                 pool='prefork', concurrency=2, env=env,
                                                 wait=False))
                else:
                    started.append(leveret_worker('cel_tasks', broker.url, queue, log,
                                                  env=env, wait=False))
                cells[backend, worker] = celery_client(
                    broker.url, backend=url, task_default_queue=queue, result_extended=True)
        for process in started:
            process.wait_for_log(r'ready\.')
        yield cells
    finally:
        for process in started:
            process.stop()
        for client in cells.values():
            close_celery_client(client)


backend_cells_params = pytest.mark.parametrize(
    'backend,worker', [(b, w) for b in BACKENDS for w in BACKEND_WORKERS])


@backend_cells_params
def test_results_and_failures_are_stored_in_the_backend(backend_cells, backend, worker):
    client = backend_cells[backend, worker]
    result = client.send_task('interop.add', (2, 3))
    assert result.get(timeout=TIMEOUT) == 5
    assert result.state == 'SUCCESS'
    # result_extended: the task's name, args and worker are stored with it.
    assert result.name == 'interop.add' and result.args == [2, 3]
    assert result.worker
    failed = client.send_task('interop.fail', ('it broke',))
    with pytest.raises(ValueError, match='it broke'):
        failed.get(timeout=TIMEOUT)
    assert failed.state == 'FAILURE' and 'ValueError' in failed.traceback


@backend_cells_params
def test_retries_end_in_success(backend_cells, backend, worker):
    result = backend_cells[backend, worker].send_task('interop.flaky', (1,))
    assert result.get(timeout=TIMEOUT) == 1
    # Between the attempts the backend holds RETRY (its info: the retry's exc, none here).
    later = backend_cells[backend, worker].send_task('interop.retry_later', (2,))
    wait_until(lambda: later.state == 'RETRY', timeout=TIMEOUT)
    assert later.info is None
    assert later.get(timeout=TIMEOUT) == 1 and later.state == 'SUCCESS'


@backend_cells_params
def test_a_group_a_chain_and_their_children(backend_cells, backend, worker):
    from celery import chain, group

    client = backend_cells[backend, worker]
    add = client.signature('interop.add')
    grouped = group(add.clone((i, i)) for i in range(4)).apply_async()
    assert grouped.get(timeout=TIMEOUT) == [0, 2, 4, 6]
    chained = chain(add.clone((1, 2)), add.clone((10,)), add.clone((100,))).apply_async()
    assert chained.get(timeout=TIMEOUT) == 113
    first = chained.parent.parent
    assert first.get(timeout=TIMEOUT) == 3
    # The next task of the chain is recorded as the first one's child.
    first = client.AsyncResult(first.id)
    assert [child.id for child in first.children] == [chained.parent.id]


@backend_cells_params
def test_chords_complete(backend_cells, backend, worker):
    from celery import chord

    client = backend_cells[backend, worker]
    add, tsum = client.signature('interop.add'), client.signature('interop.tsum')
    result = chord([add.clone((i, i)) for i in range(5)], tsum).apply_async()
    assert result.get(timeout=TIMEOUT) == 20


@backend_cells_params
def test_a_chord_inside_a_chain(backend_cells, backend, worker):
    from celery import chord

    client = backend_cells[backend, worker]
    add, tsum = client.signature('interop.add'), client.signature('interop.tsum')
    flow = (client.signature('interop.add', (1, 1), immutable=True)
            | chord([add.clone((10,)), add.clone((20,))], tsum) | add.clone((1000,)))
    assert flow.apply_async().get(timeout=TIMEOUT) == 1034


@backend_cells_params
def test_a_chord_whose_header_fails(backend_cells, backend, worker):
    from celery import chord
    from celery.exceptions import ChordError

    client = backend_cells[backend, worker]
    header = [client.signature('interop.add', (1, 1)),
              client.signature('interop.fail', ('header broke',))]
    result = chord(header, client.signature('interop.tsum')).apply_async()
    # get() raises the header's own error; the chord's result is a ChordError naming it.
    with pytest.raises(ValueError, match='header broke'):
        result.get(timeout=TIMEOUT)
    wait_until(lambda: result.state == 'FAILURE', timeout=TIMEOUT)
    assert isinstance(result.result, ChordError) and 'header broke' in str(result.result)


@backend_cells_params
def test_track_started_shows_started_with_pid_and_host(backend_cells, backend, worker,
                                                      tmp_path):
    client = backend_cells[backend, worker]
    gate = tmp_path / 'gate'
    result = client.send_task('interop.gated', (str(gate),))
    wait_until(lambda: result.state == 'STARTED', timeout=TIMEOUT)
    assert result.info['pid'] > 0 and result.info['hostname']
    gate.touch()
    assert result.get(timeout=TIMEOUT) == 'opened'


@backend_cells_params
def test_a_revoked_task_is_stored_as_revoked(backend_cells, backend, worker):
    from celery.exceptions import TaskRevokedError

    client = backend_cells[backend, worker]
    result = client.send_task('interop.add', (1, 1), countdown=3)
    result.revoke()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert result.state == 'REVOKED'


@backend_cells_params
def test_a_terminated_task_is_stored_as_revoked(backend_cells, backend, worker, tmp_path):
    from celery.exceptions import TaskRevokedError

    client = backend_cells[backend, worker]
    result = client.send_task('interop.gated', (str(tmp_path / 'never'),))
    wait_until(lambda: result.state == 'STARTED', timeout=TIMEOUT)
    result.revoke(terminate=True, signal='SIGKILL')
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert result.state == 'REVOKED'
