"""confirm_publish: every Celery publisher waits for the broker's basic.ack."""

from __future__ import annotations

import pytest
from celery import group

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> CeleryProject:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='confirms',
                                     broker_transport_options={'confirm_publish': True})
    # -E: the event dispatcher publishes in confirm mode too.
    project.start_worker('-P', 'solo', '-E', '--without-mingle', name='confirms')
    return project


def test_tasks_and_results_flow_with_publisher_confirms(project: CeleryProject) -> None:
    add = project.tasks.add
    assert add.delay(2, 2).get(timeout=20) == 4
    assert group(add.s(i, i) for i in range(10)).apply_async().get(timeout=30) == [
        2 * i for i in range(10)]


def test_a_failure_and_a_retry_flow_with_publisher_confirms(project: CeleryProject) -> None:
    with pytest.raises(ValueError, match='confirmed'):
        project.tasks.fail.delay('confirmed').get(timeout=20)
    assert project.tasks.retry_until.delay(1).get(timeout=30)['retries'] == 1
