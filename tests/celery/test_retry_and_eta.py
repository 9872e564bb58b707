"""self.retry(countdown), and apply_async with countdown, eta and expires."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from celery.exceptions import TaskRevokedError

from ..conftest import BrokerProcess
from .conftest import ProjectFactory
from .harness import CeleryProject, celery_url, queue_counts, wait_until

pytestmark = pytest.mark.celery


@pytest.fixture(scope='module')
def project(celery_broker: BrokerProcess,
            celery_project_factory: ProjectFactory) -> Iterator[CeleryProject]:
    project = celery_project_factory(celery_url(celery_broker), task_default_queue='eta')
    project.start_worker('-P', 'prefork', '-c', '2', name='eta')
    yield project


def runs_of(project: CeleryProject, task_id: str) -> list[dict]:
    return [r for r in project.records() if r['id'] == task_id]


def test_retry_with_countdown_runs_the_task_again_until_it_succeeds(
        project: CeleryProject) -> None:
    result = project.tasks.retry_until.delay(2)
    final = result.get(timeout=30)
    assert final['retries'] == 2
    runs = runs_of(project, result.id)
    assert [run['retries'] for run in runs] == [0, 1, 2]
    # Each retry is a new message with an ETA one second after the failed run.
    assert runs[0]['eta'] is None
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert later['eta'] is not None
        assert later['started_at'] >= earlier['started_at'] + 0.5


def test_countdown_runs_the_task_after_the_countdown(project: CeleryProject) -> None:
    sent_at = time.time()
    result = project.tasks.report.apply_async(('countdown',), countdown=2)
    entry = result.get(timeout=30)
    assert entry['eta'] is not None
    assert entry['started_at'] >= sent_at + 1.5


def test_eta_runs_the_task_at_the_eta(project: CeleryProject) -> None:
    eta = datetime.now(UTC) + timedelta(seconds=2)
    result = project.tasks.report.apply_async(('eta',), eta=eta)
    entry = result.get(timeout=30)
    assert datetime.fromisoformat(entry['eta']) == eta
    assert entry['started_at'] >= eta.timestamp() - 0.5


def test_a_task_that_expires_before_its_countdown_is_revoked(project: CeleryProject) -> None:
    # The broker delivers it at once (the message TTL does not apply to a delivered
    # message); the worker holds it until the countdown and then discards it.
    result = project.tasks.report.apply_async(('expired',), countdown=2, expires=1)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=30)
    assert result.state == 'REVOKED'
    assert runs_of(project, result.id) == []


def test_a_task_that_expires_while_queued_is_dropped_by_the_broker(
        project: CeleryProject, unique_queue: str) -> None:
    # No worker consumes this queue: the message's expiration (from expires=)
    # runs out in the queue and the broker drops it.
    project.tasks.report.apply_async(('parked',), queue=unique_queue, expires=3)
    assert queue_counts(project.broker_url, unique_queue) == (1, 0)
    wait_until(lambda: queue_counts(project.broker_url, unique_queue)[0] == 0, timeout=20,
               message='the expired task is still queued')
