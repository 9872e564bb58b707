"""SIGTERM: the worker stops consuming, gives prefetched tasks back, lets the
running ones finish; a second signal stops it at once."""

from __future__ import annotations

import os
import signal

from ..client_fixtures import leveret_worker, wait_until
from ..helpers import queue_depth

TIMEOUT = 60




def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_sigterm_finishes_running_tasks_and_returns_prefetched_ones(broker, app, unique,
                                                                    tmp_path):
    gate = tmp_path / 'gate'
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', concurrency=1)
    try:
        running = app.send_task('interop.gate', (str(gate), 'running'), queue=unique)
        waiting = [app.send_task('interop.add', (i, i), queue=unique) for i in range(3)]
        wait_until(lambda: (tmp_path / 'gate.running.started').exists())
        wait_until(lambda: queue_depth(broker.url, unique) == 0)  # all prefetched
        worker.signal(signal.SIGTERM)
        wait_until(lambda: queue_depth(broker.url, unique) == 3, timeout=TIMEOUT)
        assert worker.alive()  # still waiting for the running task
        gate.touch()
        assert running.get(TIMEOUT) == 'running'
        assert worker.wait(TIMEOUT) == 0
        assert 'returned 3 prefetched tasks' in worker.log()
        assert all(r.state == 'PENDING' for r in waiting)
        assert _group_gone(worker.pid)
    finally:
        worker.kill()
    # Another worker runs what was given back.
    second = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w2.log')
    try:
        assert [r.get(TIMEOUT) for r in waiting] == [0, 2, 4]
    finally:
        second.stop()


def test_a_second_signal_stops_the_worker_at_once(broker, app, unique, tmp_path):
    gate = tmp_path / 'gate'  # never opened
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', concurrency=2,
                            extra=['--shutdown-timeout', '600'])
    try:
        app.send_task('interop.gate', (str(gate), 'stuck'), queue=unique)
        wait_until(lambda: (tmp_path / 'gate.stuck.started').exists())
        worker.signal(signal.SIGTERM)
        worker.wait_for_log('warm shutdown')
        worker.signal(signal.SIGTERM)
        assert worker.wait(TIMEOUT) == 1
        wait_until(lambda: _group_gone(worker.pid), timeout=TIMEOUT)
        assert 'cold shutdown' in worker.log()
    finally:
        worker.kill()
