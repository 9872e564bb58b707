"""The client API: tasks, delay/apply_async, AsyncResult, sync and async,
forked processes, and bounded failures when the broker is away or blocking."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pika
import pytest

from leveret.client import (
    App,
    AsyncResult,
    BrokerUnavailable,
    PublishTimeout,
    Retry,
    TimeoutError,
    states,
)

from ..client_fixtures import leveret_worker, raw_get, wait_until

TIMEOUT = 60


@pytest.fixture(scope='module')
def queue(broker, tmp_path_factory):
    name = f'api-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('api') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, name, log, pool='threads', concurrency=4)
    yield name
    worker.stop()


@pytest.fixture(scope='module')
def app(broker, queue):
    app = App(broker.url, task_default_queue=queue)
    yield app
    app.close()


@pytest.fixture(scope='module')
def tasks(app):
    """The worker's tasks, declared on the client side under the same names."""
    @app.task(name='interop.add')
    def add(x, y):
        return x + y

    @app.task(name='interop.fail')
    def fail(message):
        raise ValueError(message)

    @app.task(name='interop.tracked')
    def tracked(path):
        raise NotImplementedError('runs on the worker')

    @app.task(name='interop.flaky', bind=True)
    def flaky(self, failures):
        raise self.retry(countdown=1)

    return {'add': add, 'fail': fail, 'tracked': tracked, 'flaky': flaky}


def test_delay_and_get(tasks):
    result = tasks['add'].delay(2, 3)
    assert result.get(timeout=TIMEOUT) == 5
    assert (result.state, result.ready(), result.successful(), result.result) == \
        (states.SUCCESS, True, True, 5)


def test_a_result_is_pending_until_it_arrives(app, tasks, tmp_path):
    gate = tmp_path / 'gate'
    result = tasks['tracked'].delay(str(gate))
    assert result.state in (states.PENDING, states.STARTED)
    assert not result.ready()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.2)
    # track_started: the worker says when it starts.
    wait_until(lambda: result.state == states.STARTED, timeout=TIMEOUT)
    assert result.result['pid'] > 0
    gate.touch()
    assert result.get(timeout=TIMEOUT) == 'tracked'


def test_a_failure_is_raised_or_returned(tasks):
    result = tasks['fail'].delay('bad input')
    with pytest.raises(ValueError, match='bad input'):
        result.get(timeout=TIMEOUT)
    assert result.failed() and isinstance(result.result, ValueError)
    assert result.get(timeout=TIMEOUT, propagate=False).args == ('bad input',)
    assert 'Traceback' in result.traceback


def test_an_async_result_from_the_task_id_alone(app, tasks):
    task_id = tasks['add'].delay(1, 2).id
    assert AsyncResult(task_id, app=app).get(timeout=TIMEOUT) == 3
    assert app.AsyncResult(task_id).state == states.SUCCESS


def test_the_async_api(app, tasks):
    async def main():
        results = await asyncio.gather(*(tasks['add'].delay_async(i, i) for i in range(20)))
        values = await asyncio.gather(*(r.get_async(timeout=TIMEOUT) for r in results))
        failed = await tasks['fail'].apply_async_async(('async',))
        with pytest.raises(ValueError, match='async'):
            await failed.get_async(timeout=TIMEOUT)
        by_name = await app.send_task_async('interop.add', (40, 2))
        answer = await by_name.get_async(timeout=TIMEOUT)
        await app.close_async()
        return values, answer

    values, answer = asyncio.run(main())
    assert values == [2 * i for i in range(20)] and answer == 42


def test_a_task_function_called_directly_runs_here(tasks):
    assert tasks['add'](2, 2) == 4
    with pytest.raises(Retry):
        tasks['flaky'](1)  # retry() outside a worker: nothing to retry


def test_apply_async_options_reach_the_message(app, broker, unique):
    exchange = f'{unique}.topic'
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange, 'topic')
        channel.queue_declare(unique)
        channel.queue_bind(unique, exchange, 'jobs.#')
    app.send_task('proj.job', (1,), {'k': 'v'}, exchange=exchange, routing_key='jobs.urgent',
                  priority=7, headers={'tenant': 'acme'}, task_id='fixed-id', expires=300)
    props, body = raw_get(broker.url, unique)
    assert props['priority'] == 7 and props['correlation_id'] == 'fixed-id'
    assert props['headers']['tenant'] == 'acme' and props['headers']['task'] == 'proj.job'
    assert props['headers']['expires'] is not None and props['expiration'] == '300000'
    assert body.startswith(b'[[1], {"k": "v"}')
    # routing_key alone names a queue, through the default exchange.
    app.send_task('proj.job', routing_key=unique)
    props, _ = raw_get(broker.url, unique)
    assert props['headers']['task'] == 'proj.job'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_publishing_without_a_broker_fails_after_the_timeout():
    app = App(f'amqp://guest:guest@127.0.0.1:{_free_port()}/', publish_timeout=1)
    try:
        with pytest.raises(BrokerUnavailable, match='cannot connect'):
            app.send_task('proj.anything')

        async def main():
            with pytest.raises(BrokerUnavailable):
                await app.send_task_async('proj.anything')
        asyncio.run(main())
    finally:
        app.close()


def test_publishing_to_a_blocking_broker_fails_after_the_timeout(broker_factory, unique):
    blocking = broker_factory(extra_env={'LEVERET_MEMORY_HIGH_WATERMARK': str(1 << 20)}).start()
    with pika.BlockingConnection(pika.URLParameters(blocking.url)) as conn:
        channel = conn.channel()
        channel.queue_declare(unique)
        channel.basic_publish('', unique, b'x' * (2 << 20))  # above the watermark
    app = App(blocking.url, publish_timeout=2)
    try:
        # The broker takes the publish that finds the alarm on, then blocks.
        try:
            app.send_task('proj.job', queue=f'{unique}.tasks')
        except PublishTimeout:
            pass
        with pytest.raises(PublishTimeout, match='blocked'):
            app.send_task('proj.job', queue=f'{unique}.tasks')
        with pika.BlockingConnection(pika.URLParameters(blocking.url)) as conn:
            conn.channel().queue_purge(unique)  # the alarm clears
        app.send_task('proj.job', queue=f'{unique}.tasks')
    finally:
        app.close()


def test_the_sync_api_works_in_a_forked_child(tasks):
    assert tasks['add'].delay(1, 1).get(timeout=TIMEOUT) == 2  # the parent uses it first
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: like a web server's forked worker
        try:
            value = tasks['add'].delay(20, 22).get(timeout=TIMEOUT)
            os.write(write_end, repr(value).encode())
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        reported = pipe.read()
    os.waitpid(pid, 0)
    assert reported == b'42'
    # The parent's connection is untouched.
    assert tasks['add'].delay(2, 2).get(timeout=TIMEOUT) == 4
