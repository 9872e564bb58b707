"""A Celery app's own result backend with the Leveret worker: the banner
names it (password masked), ignore_result and task_ignore_result store
nothing, result_expires is the stored result's expiry, and a backend that
cannot be reached keeps late-acked messages until their results are stored."""

from __future__ import annotations

import re
import uuid

import pytest

from ..client_fixtures import celery_client, close_celery_client, leveret_worker, wait_until
from ..conftest import RedisProcess, free_port

TIMEOUT = 60


def test_ignore_result_stores_nothing(broker, redis_server, tmp_path):
    import redis

    queue = f'ignored-{uuid.uuid4().hex[:8]}'
    url = f'{redis_server.url}/5'
    worker = leveret_worker('cel_tasks', broker.url, queue, tmp_path / 'w.log', concurrency=1,
                            env={'CELERY_RESULT_BACKEND': url, 'CELERY_DEFAULT_QUEUE': queue,
                                 'CELERY_RESULT_EXPIRES': '600'})
    client = celery_client(broker.url, backend=url, task_default_queue=queue)
    try:
        assert re.search(rf'results:\s+{re.escape(url)}\n', worker.log())
        noted = tmp_path / 'noted'
        ignored = client.send_task('interop.note', (7,), {'path': str(noted)},
                                   ignore_result=True)
        wait_until(lambda: noted.exists() and noted.read_text() == '7\n', timeout=TIMEOUT)
        # One pool process: the next task starts once the ignored one is done with.
        assert client.send_task('interop.add', (1, 2)).get(timeout=TIMEOUT) == 3
        store = redis.Redis.from_url(url)
        keys = store.keys('celery-task-meta-*')
        assert f'celery-task-meta-{ignored.id}'.encode() not in keys and len(keys) == 1
        # result_expires: the backend's own expiry on the stored result.
        assert 0 < store.ttl(keys[0]) <= 600
    finally:
        close_celery_client(client)
        worker.stop()


def test_task_ignore_result_stores_nothing(broker, redis_server, tmp_path):
    import redis

    queue = f'ignored-all-{uuid.uuid4().hex[:8]}'
    url = f'{redis_server.url}/7'
    worker = leveret_worker('cel_tasks', broker.url, queue, tmp_path / 'w.log', concurrency=1,
                            env={'CELERY_RESULT_BACKEND': url, 'CELERY_DEFAULT_QUEUE': queue,
                                 'CELERY_TASK_IGNORE_RESULT': '1'})
    client = celery_client(broker.url, backend=url, task_default_queue=queue)
    try:
        noted = tmp_path / 'noted'
        client.send_task('interop.add', (1, 2))
        client.send_task('interop.fail', ('not stored',))
        client.send_task('interop.note', (8,), {'path': str(noted)})
        # One pool process, in order: once the last task ran, the others were done with.
        wait_until(lambda: noted.exists() and noted.read_text() == '8\n', timeout=TIMEOUT)
        client.send_task('interop.note', (9,), {'path': str(noted)})
        wait_until(lambda: noted.read_text() == '8\n9\n', timeout=TIMEOUT)
        assert redis.Redis.from_url(url).keys('celery-task-meta-*') == []
    finally:
        close_celery_client(client)
        worker.stop()


def test_an_unreachable_backend_keeps_late_acked_messages(broker, tmp_path):
    port = free_port()
    url = f'redis://:s3cret@127.0.0.1:{port}/0'
    queue = f'unreachable-{uuid.uuid4().hex[:8]}'
    worker = leveret_worker('cel_tasks', broker.url, queue, tmp_path / 'w.log', concurrency=1,
                            env={'CELERY_RESULT_BACKEND': url, 'CELERY_DEFAULT_QUEUE': queue})
    sender = celery_client(broker.url, task_default_queue=queue)   # rpc://: sends fine
    redis_server: RedisProcess | None = None
    reader = None
    try:
        banner = worker.log()
        assert re.search(rf'results:\s+redis://:\*\*@127\.0\.0\.1:{port}/0\n', banner)
        assert 's3cret' not in banner
        early = sender.send_task('interop.add', (1, 1))
        late = sender.send_task('interop.late_add', (2, 3))
        # Early ack (the default, as Celery): acked when it started; the loss is logged.
        worker.wait_for_log(rf'interop\.add\[{early.id}\]: its result could not be stored in '
                            rf'redis://:\*\*@127\.0\.0\.1:{port}/0 .*the result is lost')
        # Late ack: kept, requeued after a pause that doubles, one line per attempt.
        kept = rf'late_add\[{late.id}\]: .* kept, requeued in (\d+)s'
        attempts = wait_until(lambda: re.findall(kept, worker.log())[1:] and
                              re.findall(kept, worker.log()), timeout=TIMEOUT)
        assert int(attempts[1]) == 2 * int(attempts[0])
        # The backend comes back: the message was kept, its result arrives.
        redis_server = RedisProcess(tmp_path / 'redis', port=port, password='s3cret').start()
        reader = celery_client(broker.url, backend=url)
        assert reader.AsyncResult(late.id).get(timeout=TIMEOUT) == 5
        assert reader.AsyncResult(early.id).state == 'PENDING'
    finally:
        if reader is not None:
            close_celery_client(reader)
        close_celery_client(sender)
        worker.stop()
        if redis_server is not None:
            redis_server.stop()
    assert 's3cret' not in worker.log()


@pytest.mark.parametrize('pool', ['threads', 'solo'])
def test_other_pools_store_through_the_backend_too(broker, redis_server, tmp_path, pool):
    queue = f'pool-{pool}-{uuid.uuid4().hex[:8]}'
    url = f'{redis_server.url}/6'
    worker = leveret_worker('cel_tasks', broker.url, queue, tmp_path / 'w.log', pool=pool,
                            env={'CELERY_RESULT_BACKEND': url, 'CELERY_DEFAULT_QUEUE': queue})
    client = celery_client(broker.url, backend=url, task_default_queue=queue)
    try:
        from celery import chord
        add, tsum = client.signature('interop.add'), client.signature('interop.tsum')
        assert chord([add.clone((i, 1)) for i in range(3)], tsum).apply_async().get(
            timeout=TIMEOUT) == 6
        with pytest.raises(ValueError, match='no'):
            client.send_task('interop.fail', ('no',)).get(timeout=TIMEOUT)
    finally:
        close_celery_client(client)
        worker.stop()
