"""Tasks waiting behind a running one (in the worker, or queued in its pool
process behind a short task) are revoked and given back on SIGTERM like any
prefetched task."""

from __future__ import annotations

import signal

import pytest

from leveret.client import TaskRevokedError

from ..client_fixtures import celery_client, close_celery_client, leveret_worker, wait_until
from ..helpers import queue_depth

TIMEOUT = 60




def _hold_the_pool(app, broker, queue, tmp_path):
    """A gate task known to be short, then one that waits, and an add behind it."""
    opened = tmp_path / 'open'
    opened.touch()
    assert app.send_task('interop.gate', (str(opened), 'learn'), queue=queue).get(TIMEOUT) \
        == 'learn'
    gate = tmp_path / 'gate'
    held = app.send_task('interop.gate', (str(gate), 'held'), queue=queue)
    behind = app.send_task('interop.add', (2, 2), queue=queue)
    wait_until(lambda: (tmp_path / 'gate.held.started').exists(), timeout=TIMEOUT)
    wait_until(lambda: queue_depth(broker.url, queue) == 0)  # both prefetched
    return gate, held, behind


def test_a_revoked_task_waiting_behind_a_running_one_never_runs(broker, app, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', concurrency=1)
    control = celery_client(broker.url)
    try:
        gate, held, behind = _hold_the_pool(app, broker, unique, tmp_path)
        control.control.revoke(behind.id)
        wait_until(lambda: behind.id in (control.control.inspect(
            destination=[worker.nodename], timeout=2).revoked() or {}).get(worker.nodename, []))
        gate.touch()
        assert held.get(TIMEOUT) == 'held'
        with pytest.raises(TaskRevokedError, match='revoked'):
            behind.get(TIMEOUT)
        assert app.send_task('interop.add', (1, 1), queue=unique).get(TIMEOUT) == 2
    finally:
        close_celery_client(control)
        worker.stop()


def test_sigterm_gives_back_a_task_waiting_behind_a_running_one(broker, app, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', concurrency=1)
    try:
        gate, held, behind = _hold_the_pool(app, broker, unique, tmp_path)
        worker.signal(signal.SIGTERM)
        worker.wait_for_log('returned 1 prefetched tasks')
        gate.touch()
        assert held.get(TIMEOUT) == 'held'
        assert worker.wait(TIMEOUT) == 0
        assert queue_depth(broker.url, unique) == 1
        assert behind.state == 'PENDING'
    finally:
        worker.kill()
    second = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w2.log')
    try:
        assert behind.get(TIMEOUT) == 4
    finally:
        second.stop()
