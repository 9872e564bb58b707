"""Flower (the Celery dashboard) reads Leveret's queues from the management API:
its Broker page lists them with their message and consumer counts."""

from __future__ import annotations

import os
import re
import socket
import sys
import urllib.request
from pathlib import Path

import pika

from ..conftest import ROOT, BrokerProcess
from ..processes import Background, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def broker_page(port: int) -> str:
    try:
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/broker', timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return ''


def test_flowers_broker_page_lists_leverets_queues_with_their_counts(own_broker: BrokerProcess,
                                                                     tmp_path: Path):
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare('celery', durable=True)
        for _ in range(5):
            ch.basic_publish('', 'celery', b'{}')
        consumer = conn.channel()
        consumer.basic_qos(prefetch_count=2)
        consumer.basic_consume('celery', lambda *a: None)     # holds 2 unacked
        conn.process_data_events(time_limit=0.3)
        port = free_port()
        flower = Background(
            [sys.executable, '-m', 'celery', '-b', own_broker.url.rstrip('/') + '//', 'flower',
             f'--port={port}', '--address=127.0.0.1',
             f'--broker_api=http://guest:guest@127.0.0.1:{own_broker.management_port}/api/'],
            tmp_path / 'flower.log', cwd=ROOT, env=dict(os.environ))
        try:
            page = wait_until(lambda: (lambda p: p if 'id="celery"' in p else '')(
                broker_page(port)), timeout=60, interval=0.5,
                message=lambda: flower.log()[-3000:])
        finally:
            flower.stop()
    row = re.search(r'<tr id="celery">(.*?)</tr>', page, re.S)
    assert row is not None, page
    cells = re.findall(r'<td[^>]*>(.*?)</td>', row.group(1), re.S)
    # Queue, Messages, Unacked, Ready, Consumers (then Idle since).
    assert [c.strip() for c in cells[:5]] == ['celery', '5', '2', '3', '1']
    assert 'RabbitMQ management API call failed' not in flower.log()
