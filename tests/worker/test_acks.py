"""Acknowledgements and prefetch: early acks by default, ``acks_late``,
reject-on-worker-lost, prefetch = concurrency x multiplier."""

from __future__ import annotations

import os

import pika
import pytest

from ..client_fixtures import leveret_worker, wait_until
from ..helpers import queue_depth

TIMEOUT = 60




def test_an_early_acked_task_is_not_redelivered_but_a_late_acked_one_is(
        broker, app, unique, tmp_path):
    gate = tmp_path / 'gate'
    first = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w1.log')
    app.send_task('interop.gate', (str(gate), 'early'), queue=unique)
    late = app.send_task('interop.gate_late', (str(gate), 'late'), queue=unique)
    early_started, late_started = (tmp_path / 'gate.early.started',
                                   tmp_path / 'gate.late.started')
    wait_until(lambda: early_started.exists() and late_started.exists())
    first.kill()  # SIGKILL, worker and pool: nothing is acked any more
    early_started.unlink()
    late_started.unlink()
    gate.touch()
    second = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w2.log')
    try:
        assert late.get(TIMEOUT) == 'late'
        # Whatever was redelivered came before this one.
        assert app.send_task('interop.add', (1, 1), queue=unique).get(TIMEOUT) == 2
        assert not early_started.exists()
    finally:
        second.stop()


def test_a_late_acked_task_whose_process_dies_is_requeued(broker, app, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log')
    try:
        marker = tmp_path / 'died-once'
        result = app.send_task('interop.die_late', (str(marker),), queue=unique)
        assert result.get(TIMEOUT) == 'second time lucky'
        assert marker.exists()
        assert 'requeued' in worker.log()
    finally:
        worker.stop()


def test_prefetch_is_concurrency_times_the_multiplier(broker, app, unique, tmp_path):
    gate = tmp_path / 'gate'
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log',
                            concurrency=2, extra=['--prefetch-multiplier', '2'])
    try:
        results = [app.send_task('interop.gate', (str(gate), str(i)), queue=unique)
                   for i in range(10)]
        wait_until(lambda: len(list(tmp_path.glob('gate.*.started'))) == 2)
        # 2 running (acked when they started) + 4 prefetched, unacked: 4 stay queued.
        wait_until(lambda: queue_depth(broker.url, unique) == 4)
        assert len(list(tmp_path.glob('gate.*.started'))) == 2
        assert queue_depth(broker.url, unique) == 4
        gate.touch()
        assert sorted(r.get(TIMEOUT) for r in results) == sorted(str(i) for i in range(10))
    finally:
        worker.stop()


def test_a_rejected_task_is_dropped(broker, app, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log',
                            pool='solo')
    try:
        app.send_task('interop.reject', (), queue=unique)
        worker.wait_for_log(r'interop\.reject\[.*rejected \(requeue=False\)')
        assert app.send_task('interop.add', (1, 2), queue=unique).get(TIMEOUT) == 3
        assert queue_depth(broker.url, unique) == 0
    finally:
        worker.stop()


def test_tasks_of_a_leveret_worker_keep_their_pool_pids(broker, app, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log',
                            concurrency=2)
    try:
        pids = {app.send_task('interop.pid', (), queue=unique).get(TIMEOUT) for _ in range(6)}
        assert worker.pid not in pids and len(pids) <= 2
        assert all(os.getpgid(pid) == worker.pid for pid in pids)
    finally:
        worker.stop()


@pytest.mark.parametrize('pool', ['prefork', 'solo'])
def test_a_message_that_is_not_a_valid_task_is_rejected(broker, app, unique, tmp_path, pool):
    # Its task and id headers are fine, its body is not ``[args, kwargs, embed]``:
    # the prefork pool finds out in the pool process, the others in the worker.
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log', pool=pool)
    try:
        with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
            conn.channel().basic_publish(
                '', unique, b'{"not": "a task body"}',
                pika.BasicProperties(content_type='application/json',
                                     content_encoding='utf-8', correlation_id='x1',
                                     headers={'lang': 'py', 'task': 'interop.add',
                                              'id': 'x1', 'argsrepr': '()'}))
        worker.wait_for_log(r'rejecting an invalid task message')
        assert app.send_task('interop.add', (2, 3), queue=unique).get(TIMEOUT) == 5
        assert queue_depth(broker.url, unique) == 0
    finally:
        worker.stop()
