"""Remote control: Celery's ``inspect`` (API and command line) talks to the
Leveret worker: ping, active, registered, stats."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from ..client_fixtures import (
    APPS,
    celery_client,
    celery_url,
    close_celery_client,
    leveret_worker,
    wait_until,
)

TIMEOUT = 60


@pytest.fixture(scope='module')
def worker(broker, tmp_path_factory):
    queue = f'control-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('control') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, queue, log, concurrency=2,
                            extra=['--prefetch-multiplier', '3'])
    worker.queue = queue  # type: ignore[attr-defined]
    yield worker
    worker.stop()


@pytest.fixture(scope='module')
def celery(broker):
    app = celery_client(broker.url)
    yield app
    close_celery_client(app)



def _inspect(celery, worker):
    return celery.control.inspect(destination=[worker.nodename], timeout=3)


def test_ping(celery, worker):
    assert _inspect(celery, worker).ping() == {worker.nodename: {'ok': 'pong'}}


def test_registered_lists_the_app_tasks(celery, worker):
    registered = _inspect(celery, worker).registered()[worker.nodename]
    assert 'interop.add' in registered and 'interop.asleep' in registered
    assert registered == sorted(registered)


def test_active_shows_running_tasks(celery, app, worker, tmp_path):
    gate = tmp_path / 'gate'
    result = app.send_task('interop.gate', (str(gate), 'active'), queue=worker.queue)
    wait_until(lambda: (tmp_path / 'gate.active.started').exists(), timeout=TIMEOUT)
    active = _inspect(celery, worker).active()[worker.nodename]
    assert [(t['id'], t['name']) for t in active] == [(result.id, 'interop.gate')]
    assert active[0]['acknowledged'] and active[0]['hostname'] == worker.nodename
    assert active[0]['delivery_info']['routing_key'] == worker.queue
    assert active[0]['worker_pid'] != worker.pid
    gate.touch()
    assert result.get(TIMEOUT) == 'active'


def test_stats_report_pool_prefetch_and_totals(celery, app, worker):
    assert app.send_task('interop.add', (1, 1), queue=worker.queue).get(TIMEOUT) == 2
    stats = _inspect(celery, worker).stats()[worker.nodename]
    assert stats['pool']['max-concurrency'] == 2
    assert len(stats['pool']['processes']) == 2
    assert stats['prefetch_count'] == 6
    assert stats['total']['interop.add'] >= 1
    assert stats['pid'] == worker.pid
    assert stats['broker']['port'] == int(celery.conf.broker_url.split(':')[-1].strip('/'))


def test_a_command_for_another_node_is_ignored(celery, worker):
    replies = celery.control.inspect(destination=['nobody@nowhere'], timeout=1).ping()
    assert not replies


def test_the_celery_command_line_inspects_it(broker, worker):
    out = subprocess.run(
        [sys.executable, '-m', 'celery', '-b', celery_url(broker.url), 'inspect', 'ping',
         '-d', worker.nodename, '--timeout', '5'],
        cwd=APPS, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert worker.nodename in out.stdout and 'pong' in out.stdout
