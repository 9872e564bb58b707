"""Prefetch changes reach running consumers: ETA tasks held by a worker never starve it.

A worker holds every ETA/countdown task unacked until its ETA and raises its
prefetch count by one (basic.qos on the consuming channel) for each, so that
other tasks keep flowing. The global flag it sends is chosen by kombu from the
broker's product and version; whichever it is, the new count must apply to
the consumer that is already running.
"""

from __future__ import annotations

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url

pytestmark = pytest.mark.celery


def test_a_worker_holding_eta_tasks_keeps_consuming_new_tasks(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='prefetch')
    # Concurrency 1 x multiplier 1: a prefetch count of 1 to begin with.
    project.start_worker('-P', 'solo', '-c', '1', '--prefetch-multiplier', '1',
                         '--without-mingle', '--without-gossip', name='prefetch')
    held = [project.tasks.report.apply_async(('held',), countdown=60) for _ in range(3)]

    # The worker sends each prefetch increase on a tick of its event loop (about
    # every 2 s when idle), with RabbitMQ as here: a few seconds per held task.
    assert project.tasks.add.delay(20, 22).get(timeout=30) == 42

    assert all(result.state == 'PENDING' for result in held)
    assert project.records() == []   # none of the held tasks has run
