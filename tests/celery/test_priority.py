"""Priority queues (x-max-priority): highest priority first, FIFO within a level."""

from __future__ import annotations

import pytest

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import celery_url, queue_counts

pytestmark = pytest.mark.celery


def test_a_worker_started_on_a_backlog_takes_the_highest_priority_first(
        celery_broker: BrokerProcess, celery_project_factory: ProjectFactory) -> None:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='prio',
                                     task_queue_max_priority=10, task_default_priority=5)
    report = project.tasks.report
    # Queued with no worker running, as in the RabbitMQ trace: 'p5' and 'default'
    # share priority 5 and must keep their publishing order.
    for label, priority in [('p1', 1), ('p9', 9), ('p5', 5), ('p0', 0), ('p7', 7),
                            ('default', None)]:
        options = {} if priority is None else {'priority': priority}
        report.apply_async((label,), **options)
    assert queue_counts(project.broker_url, 'prio') == (6, 0)

    # Prefetch 1 and one process: each delivery is chosen from what is still queued.
    project.start_worker('-P', 'solo', '-c', '1', '--prefetch-multiplier', '1', name='prio')
    records = project.wait_for_records(lambda records: len(records) == 6)

    assert [r['label'] for r in records] == ['p9', 'p7', 'p5', 'default', 'p1', 'p0']
    assert [r['delivery_info']['priority'] for r in records] == [9, 7, 5, 5, 1, 0]
