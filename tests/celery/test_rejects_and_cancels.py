"""The broker's refusals and cancellations, as a Celery worker meets them.

An unregistered task is rejected; a queue deleted under the worker cancels its
consumer (server basic.cancel) and the worker reconnects and declares it again;
a queue redeclared with another x-queue-type is refused with 406 and the worker
exits.
"""

from __future__ import annotations

import pytest
from amqp.exceptions import NotFound
from celery.exceptions import NotRegistered
from kombu import Connection

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url, queue_counts, wait_until

pytestmark = pytest.mark.celery


def test_an_unregistered_task_is_rejected_with_a_not_registered_result(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='unknown')
    worker = project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                  name='unknown')
    result = project.app.send_task('leveret.no_such_task', args=(1,))
    with pytest.raises(NotRegistered):
        result.get(timeout=20)
    worker.wait_for_log(r"Received unregistered task of type 'leveret\.no_such_task'")
    # Rejected without requeue: nothing left in the queue, nothing unacked.
    assert queue_counts(project.broker_url, 'unknown') == (0, 1)
    assert project.tasks.add.delay(1, 1).get(timeout=20) == 2


def consumers_of(url: str, queue: str) -> int:
    try:
        return queue_counts(url, queue)[1]
    except NotFound:   # while the queue does not exist yet
        return 0


def test_a_worker_whose_queue_is_deleted_declares_it_again_and_carries_on(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='doomed')
    worker = project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                  name='doomed')
    assert project.tasks.add.delay(1, 2).get(timeout=20) == 3

    with Connection(project.broker_url) as connection:
        connection.default_channel.queue_delete('doomed')
    worker.wait_for_log(r'(?i)connection to broker lost')
    # The client declared the queue once and will not again: wait for the worker's
    # own declaration (and consumer) before publishing.
    wait_until(lambda: consumers_of(project.broker_url, 'doomed') == 1, timeout=30,
               message='the worker did not consume its queue again')
    assert project.tasks.add.delay(3, 4).get(timeout=20) == 7
    assert worker.alive()


def test_a_worker_declaring_a_classic_queue_as_quorum_is_refused_and_exits(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    with Connection(celery_url(celery_broker)) as connection:
        connection.default_channel.queue_declare('clash', durable=True, auto_delete=False)
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='clash',
                                     task_default_queue_type='quorum')
    worker = project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                  name='clash', ready=False)
    worker.proc.wait(30)
    assert worker.proc.returncode != 0
    assert 'PRECONDITION_FAILED' in worker.log()
    assert "inequivalent arg 'x-queue-type'" in worker.log()
