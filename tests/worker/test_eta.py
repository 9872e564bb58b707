"""ETA and countdown tasks are held (unacked) without holding up other
work; ``expires`` and revokes are honoured when they come due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leveret.client import TaskRevokedError, states

from ..client_fixtures import celery_client, close_celery_client, leveret_worker, wait_until

TIMEOUT = 60


@pytest.fixture(scope='module')
def queue(broker, tmp_path_factory):
    # One slot, prefetch 1: a held eta task must not take the only place.
    import uuid
    name = f'eta-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('eta') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, name, log, pool='solo',
                            extra=['--prefetch-multiplier', '1'])
    yield name
    worker.stop()



def test_a_task_due_later_does_not_hold_up_the_queue(app, queue):
    later = app.send_task('interop.add', (1, 1), queue=queue, countdown=3600)
    now = app.send_task('interop.add', (2, 2), queue=queue)
    assert now.get(TIMEOUT) == 4
    assert later.state == states.PENDING
    eta = datetime.now(UTC) + timedelta(hours=2)
    at_eta = app.send_task('interop.add', (3, 3), queue=queue, eta=eta)
    assert app.send_task('interop.add', (4, 4), queue=queue).get(TIMEOUT) == 8
    assert at_eta.state == states.PENDING


def test_a_countdown_task_runs_when_due(app, queue):
    sent = datetime.now(UTC)
    result = app.send_task('interop.add', (5, 5), queue=queue, countdown=1)
    assert result.get(TIMEOUT) == 10
    assert result.date_done >= sent + timedelta(seconds=0.9)


def test_a_task_that_expired_before_running_is_revoked(app, queue):
    # Delivered at once (so the broker's per-message TTL does not apply), held
    # until its eta, expired by then.
    result = app.send_task('interop.add', (1, 2), queue=queue, countdown=2, expires=1)
    with pytest.raises(TaskRevokedError, match='expired'):
        result.get(TIMEOUT)
    assert result.state == states.REVOKED


def test_a_revoked_scheduled_task_is_discarded_at_its_eta(broker, app, queue):
    result = app.send_task('interop.add', (1, 2), queue=queue, countdown=2)
    control = celery_client(broker.url)
    try:
        control.control.revoke(result.id)
    finally:
        close_celery_client(control)
    with pytest.raises(TaskRevokedError, match='revoked'):
        result.get(TIMEOUT)


def test_prefetch_grows_by_one_per_held_task(broker, app, queue):
    held = [app.send_task('interop.add', (i, i), queue=queue, countdown=3600) for i in range(3)]
    assert app.send_task('interop.add', (7, 7), queue=queue).get(TIMEOUT) == 14
    control = celery_client(broker.url)
    try:
        def scheduled():
            replies = control.control.inspect(timeout=2).scheduled() or {}
            return [entry for entries in replies.values() for entry in entries
                    if entry['request']['id'] in {r.id for r in held}]
        assert len(wait_until(lambda: len(scheduled()) == 3 and scheduled())) == 3
    finally:
        close_celery_client(control)
