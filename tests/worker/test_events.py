"""Task and worker events on ``celeryev``, read by Celery's own event
receiver and state (what ``celery events`` and Flower use), and by the
``celery events --dump`` command."""

from __future__ import annotations

import sys
import threading
import uuid

import pytest

from ..client_fixtures import (
    Background,
    celery_client,
    celery_url,
    close_celery_client,
    leveret_worker,
    wait_until,
)

TIMEOUT = 60


@pytest.fixture(scope='module')
def worker(broker, tmp_path_factory):
    queue = f'events-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('events') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, queue, log, extra=['-E'])
    worker.queue = queue  # type: ignore[attr-defined]
    yield worker
    worker.stop()



class Monitor:
    """Celery's EventReceiver feeding Celery's State, in a thread."""

    def __init__(self, amqp_url: str) -> None:
        self.celery = celery_client(amqp_url)
        self.state = self.celery.events.State()
        self.events: list[dict] = []
        self._connection = self.celery.connection_for_read()
        self.receiver = self.celery.events.Receiver(self._connection,
                                                    handlers={'*': self._on_event})
        self._thread = threading.Thread(target=self.receiver.capture,
                                        kwargs={'wakeup': False}, daemon=True)

    def _on_event(self, event: dict) -> None:
        self.events.append(event)
        self.state.event(event)

    def start(self) -> Monitor:
        self._thread.start()
        wait_until(lambda: self.receiver.consumer is not None if hasattr(
            self.receiver, 'consumer') else True, timeout=10)
        return self

    def types_for(self, task_id: str) -> list[str]:
        return [e['type'] for e in list(self.events) if e.get('uuid') == task_id]

    def stop(self) -> None:
        self.receiver.should_stop = True
        self._thread.join(10)
        self._connection.release()
        close_celery_client(self.celery)


@pytest.fixture
def monitor(broker, worker):
    monitor = Monitor(broker.url).start()
    # The receiver is bound once it hears the worker's next heartbeat.
    wait_until(lambda: any(e['type'] == 'worker-heartbeat' for e in monitor.events),
               timeout=TIMEOUT)
    yield monitor
    monitor.stop()


def test_task_events_tell_the_life_of_each_task(app, worker, monitor):
    ok = app.send_task('interop.add', (2, 3), queue=worker.queue)
    bad = app.send_task('interop.fail', ('event',), queue=worker.queue)
    retried = app.send_task('interop.flaky', (1,), queue=worker.queue)
    for result in (ok, retried):
        result.get(TIMEOUT)
    with pytest.raises(ValueError):
        bad.get(TIMEOUT)
    wait_until(lambda: 'task-succeeded' in monitor.types_for(retried.id), timeout=TIMEOUT)
    assert monitor.types_for(ok.id) == ['task-received', 'task-started', 'task-succeeded']
    assert monitor.types_for(bad.id)[-1] == 'task-failed'
    assert monitor.types_for(retried.id) == [
        'task-received', 'task-started', 'task-retried',
        'task-received', 'task-started', 'task-succeeded']
    # Celery's state (Flower's model) understood them.
    tasks = monitor.state.tasks
    assert tasks[ok.id].state == 'SUCCESS' and tasks[ok.id].result == '5'
    assert tasks[ok.id].name == 'interop.add' and tasks[ok.id].args == '(2, 3)'
    assert tasks[bad.id].state == 'FAILURE' and 'event' in tasks[bad.id].exception
    assert tasks[ok.id].worker.hostname == worker.nodename
    assert monitor.state.workers[worker.nodename].alive


def test_celery_events_dump_shows_them(broker, app, worker, tmp_path):
    dump = Background([sys.executable, '-m', 'celery', '-b', celery_url(broker.url),
                       'events', '--dump'], tmp_path / 'dump.log')
    try:
        dump.wait_for_log(rf'{worker.nodename} .* heartbeat: ', timeout=TIMEOUT)
        result = app.send_task('interop.add', (20, 1), queue=worker.queue)
        assert result.get(TIMEOUT) == 21
        dump.wait_for_log(rf'task succeeded: .*{result.id}', timeout=TIMEOUT)
    finally:
        dump.kill()
