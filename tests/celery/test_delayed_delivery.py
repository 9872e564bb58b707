"""Celery's native delayed delivery (quorum queues on a topic exchange).

The worker declares the ``celery_delayed_*`` topology: 28 levels of topic
exchanges and queues whose message TTL is 2**level seconds, chained by
dead-lettering and exchange-to-exchange bindings. A countdown task is
published to ``celery_delayed_27`` with its delay as 28 binary digits in front
of its routing key; it waits out the levels whose digit is 1 and reaches the
app's queue through the exchange ``celery_delayed_delivery``, carrying the
x-death headers of each expiry.
"""

from __future__ import annotations

from typing import Any

import pytest
from kombu import Connection

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, CeleryWorker, celery_url

pytestmark = pytest.mark.celery

QUEUE = 'delayed'


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    return celery_project_factory(celery_url(celery_broker), task_default_queue=QUEUE,
                                  task_default_queue_type='quorum',
                                  task_default_exchange_type='topic')


@pytest.fixture(scope='module', autouse=True)
def worker(project: CeleryProject) -> CeleryWorker:
    return project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                name='delayed')


def delay_in_routing_key(routing_key: str) -> int:
    """The delay in seconds that the 28 leading binary digits of the key spell."""
    *bits, queue = routing_key.split('.', 28)
    assert len(bits) == 28 and set(bits) <= {'0', '1'} and queue == QUEUE, routing_key
    return int(''.join(bits), 2)


def deaths(entry: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    return [(d['queue'], d['exchange'], d['reason'], d['count']) for d in entry['x-death']]


def test_the_worker_declares_the_delayed_delivery_topology(project: CeleryProject,
                                                           worker: CeleryWorker) -> None:
    for message in ('Direct exchanges are not supported', 'Failed to setup delayed delivery',
                    'Failed to declare exchanges', 'Failed to bind'):
        assert message not in worker.log()
    with Connection(project.broker_url) as connection:
        channel = connection.default_channel
        # Passive declares: each raises (404) if the entity is missing.
        for level in range(28):
            channel.exchange_declare(f'celery_delayed_{level}', 'topic', passive=True)
            channel.queue_declare(f'celery_delayed_{level}', passive=True)
        channel.exchange_declare('celery_delayed_delivery', 'topic', passive=True)


def test_a_countdown_task_arrives_through_the_delayed_delivery_exchanges(
        project: CeleryProject) -> None:
    result = project.tasks.report.apply_async(('delayed',), countdown=3)
    entry = result.get(timeout=30)

    assert entry['delivery_info']['exchange'] == 'celery_delayed_delivery'
    assert delay_in_routing_key(entry['delivery_info']['routing_key']) == 3
    # 3 = 0b11: two seconds in level 1, then one second in level 0; newest death first.
    assert deaths(entry) == [('celery_delayed_0', 'celery_delayed_0', 'expired', 1),
                             ('celery_delayed_1', 'celery_delayed_27', 'expired', 1)]
    assert all(d['routing-keys'] == [entry['delivery_info']['routing_key']]
               for d in entry['x-death'])
    assert entry['x-first-death-exchange'] == 'celery_delayed_27'
    assert entry['x-first-death-queue'] == 'celery_delayed_1'
    assert entry['x-first-death-reason'] == 'expired'


def test_a_retry_with_countdown_goes_through_the_delayed_delivery_exchanges(
        project: CeleryProject) -> None:
    entry = project.tasks.retry_until.delay(1).get(timeout=30)

    assert entry['retries'] == 1
    assert entry['delivery_info']['exchange'] == 'celery_delayed_delivery'
    assert delay_in_routing_key(entry['delivery_info']['routing_key']) == 1
    assert deaths(entry) == [('celery_delayed_0', 'celery_delayed_27', 'expired', 1)]
