"""task_acks_late: a task whose worker is killed (SIGKILL) is redelivered and runs again."""

from __future__ import annotations

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url, queue_counts, wait_until

pytestmark = pytest.mark.celery


def test_a_late_ack_task_runs_again_after_its_worker_is_killed(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='late',
                                     task_acks_late=True)
    worker = project.start_worker('-P', 'prefork', '-c', '1', name='late')
    result = project.tasks.report_then_sleep.delay('late', 3)
    project.wait_for_records(lambda records: len(records) == 1)

    # The main process and its pool child die together; their TCP connections
    # simply vanish, and the unacked task goes back to the queue.
    worker.kill()
    wait_until(lambda: queue_counts(project.broker_url, 'late') == (1, 0), timeout=10,
               message='the unacked task was not requeued')

    # Same node name: its exclusive pidbox queue must already be gone.
    project.start_worker('-P', 'prefork', '-c', '1', name='late')
    final = result.get(timeout=60)

    first, second = project.records()
    assert first['id'] == second['id'] == result.id
    assert first['delivery_info']['redelivered'] is False
    assert second['delivery_info']['redelivered'] is True
    assert final['delivery_info']['redelivered'] is True
    assert queue_counts(project.broker_url, 'late') == (0, 1)
