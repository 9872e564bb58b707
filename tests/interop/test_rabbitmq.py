"""The Leveret client and worker against a real RabbitMQ (``RABBITMQ_URL``;
skipped when it is not set), with a Celery client alongside."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pika
import pytest

from leveret.client import App

from ..client_fixtures import celery_client, close_celery_client, leveret_worker

RABBITMQ_URL = os.environ.get('RABBITMQ_URL')
TIMEOUT = 60

pytestmark = pytest.mark.skipif(not RABBITMQ_URL, reason='RABBITMQ_URL is not set')


@pytest.fixture(scope='module')
def queue(tmp_path_factory):
    assert RABBITMQ_URL
    name = f'leveret-interop-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('rabbitmq') / 'worker.log'
    worker = leveret_worker('lv_tasks', RABBITMQ_URL, name, log, extra=['-E'])
    yield name
    worker.stop()
    with pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)) as conn:
        channel = conn.channel()
        channel.queue_delete(name)
        channel.exchange_delete(name)


@pytest.fixture(scope='module')
def clients():
    assert RABBITMQ_URL
    leveret, celery = App(RABBITMQ_URL), celery_client(RABBITMQ_URL)
    yield {'leveret': leveret, 'celery': celery}
    leveret.close()
    close_celery_client(celery)


def send(clients, client, name, args, queue, **options):
    if client == 'celery':
        return clients['celery'].send_task(name, args=args, queue=queue, **options)
    return clients['leveret'].send_task(name, args, queue=queue, **options)


both = pytest.mark.parametrize('client', ['leveret', 'celery'])


@both
def test_results(clients, queue, client):
    assert send(clients, client, 'interop.add', (2, 3), queue).get(timeout=TIMEOUT) == 5


@both
def test_failures(clients, queue, client):
    with pytest.raises(ValueError, match='rabbit'):
        send(clients, client, 'interop.fail', ('rabbit',), queue).get(timeout=TIMEOUT)


@both
def test_retries(clients, queue, client):
    assert send(clients, client, 'interop.flaky', (1,), queue).get(timeout=TIMEOUT) == 1


@both
def test_countdown(clients, queue, client):
    sent = datetime.now(UTC)
    result = send(clients, client, 'interop.add', (1, 1), queue, countdown=1)
    assert result.get(timeout=TIMEOUT) == 2
    assert result.date_done >= sent + timedelta(seconds=0.9)


def test_async_tasks(clients, queue):
    result = send(clients, 'leveret', 'interop.asleep', (0.05,), queue)
    assert result.get(timeout=TIMEOUT) == 'awake'
