"""A worker that stops while holding countdown tasks hands them back to the queue."""

from __future__ import annotations

import signal

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url, queue_counts, wait_until

pytestmark = pytest.mark.celery


def test_countdown_tasks_held_by_a_stopped_worker_run_on_the_next_one(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='handover')
    worker = project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                                  name='handover')
    results = [project.tasks.report.apply_async((f'held-{i}',), countdown=5) for i in range(3)]
    worker.wait_for_log(r'(?s)(received.*){3}')
    # The worker holds them unacked until their ETA; a warm shutdown leaves them
    # unacked, and the broker requeues them when the worker's channel goes.
    assert worker.stop(signal.SIGTERM) == 0
    wait_until(lambda: queue_counts(project.broker_url, 'handover') == (3, 0), timeout=10,
               message='the held tasks were not requeued')

    project.start_worker('-P', 'solo', '--without-mingle', '--without-gossip',
                         name='handover')
    entries = [result.get(timeout=30) for result in results]
    assert sorted(entry['label'] for entry in entries) == ['held-0', 'held-1', 'held-2']
    assert all(entry['delivery_info']['redelivered'] for entry in entries)
