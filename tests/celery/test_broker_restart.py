"""The broker stops (SIGTERM) and starts again on the same port: worker and client carry on."""

from __future__ import annotations

import pytest
from celery import group

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url

pytestmark = pytest.mark.celery


def test_worker_and_client_reconnect_after_a_broker_restart(
        fresh_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    fresh_broker.start()
    port = fresh_broker.port
    project = celery_project_factory(celery_url(fresh_broker), task_default_queue='restart')
    worker = project.start_worker('-P', 'solo', name='restart')
    add = project.tasks.add
    assert add.delay(1, 1).get(timeout=20) == 2   # the client's connections are open now

    assert fresh_broker.stop() == 0
    worker.wait_for_log(r'(?i)connection to broker lost')
    fresh_broker.start(port=port)

    # New tasks after the restart: the client republishes on a new connection,
    # the worker reconnects (it retries every few seconds) and results come back.
    assert add.delay(2, 3).get(timeout=60) == 5
    assert group(add.s(i, i) for i in range(5)).apply_async().get(timeout=30) == [0, 2, 4, 6, 8]
    assert worker.alive()
    project.close()
