"""``self.retry()`` and ``Retry``: the task is sent again with retries + 1
after its countdown; past ``max_retries`` it fails; unknown tasks fail
with NotRegistered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leveret.client import NotRegistered, states

from ..client_fixtures import leveret_worker, wait_until

TIMEOUT = 60


@pytest.fixture(scope='module')
def queue(broker, tmp_path_factory):
    name = f'retry-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('retry') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, name, log)
    yield name
    worker.stop()



def test_a_retried_task_runs_again_with_retries_plus_one(app, queue):
    sent = datetime.now(UTC)
    result = app.send_task('interop.flaky', (1,), queue=queue)
    seen = wait_until(lambda: result.state != states.PENDING and result.state)
    assert seen in (states.RETRY, states.SUCCESS)
    assert result.get(TIMEOUT) == 1
    # The countdown of self.retry(countdown=1) was honoured.
    assert result.date_done >= sent + timedelta(seconds=0.9)


def test_the_retry_state_is_visible_while_waiting(app, queue):
    result = app.send_task('interop.flaky', (3,), queue=queue)
    wait_until(lambda: result.state == states.RETRY, timeout=TIMEOUT)
    assert result.get(TIMEOUT) == 3


def test_past_max_retries_the_task_fails_with_its_exception(app, queue):
    result = app.send_task('interop.always_retry', (), queue=queue)
    with pytest.raises(KeyError, match='still failing'):
        result.get(TIMEOUT)
    assert result.state == states.FAILURE


def test_an_unregistered_task_fails_with_not_registered(app, queue):
    result = app.send_task('interop.no_such_task', (), queue=queue)
    with pytest.raises(NotRegistered, match='interop.no_such_task'):
        result.get(TIMEOUT)
    # And the worker goes on.
    assert app.send_task('interop.add', (1, 1), queue=queue).get(TIMEOUT) == 2


def test_a_child_task_knows_its_parent_and_root(app, queue):
    parent = app.send_task('interop.spawn', (queue,), queue=queue)
    child = app.AsyncResult(parent.get(TIMEOUT))
    request = child.get(TIMEOUT)
    assert request['parent_id'] == parent.id and request['root_id'] == parent.id
