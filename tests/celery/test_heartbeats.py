"""Heartbeats: a worker with a short broker_heartbeat stays connected while idle.

py-amqp gives up on a connection that has received no bytes for two heartbeat
intervals; an idle worker's consumer connection receives nothing but the
broker's heartbeat frames.
"""

from __future__ import annotations

import time

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url

pytestmark = pytest.mark.celery


def test_an_idle_worker_with_a_two_second_heartbeat_stays_connected(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='heartbeat',
                                     broker_heartbeat=2)
    # No gossip, mingle or events: nothing else crosses the consumer connection.
    worker = project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                  '--without-heartbeat', name='heartbeat')
    time.sleep(7)   # more than three heartbeat timeouts (2 x 2 s) of silence
    assert 'Connection to broker lost' not in worker.log()
    assert 'heartbeats missed' not in worker.log()
    assert project.tasks.add.delay(1, 1).get(timeout=20) == 2
