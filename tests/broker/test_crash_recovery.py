"""The broker is killed with SIGKILL at random points, again and again, under a
publisher with confirms and a consumer with acks; nothing confirmed is lost.

An ack is durable once its transaction commits (tx.commit-ok is sent only
after the acks are on disk), so the consumer acks in small transactions and
counts an ack as done only when its commit-ok arrives.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import pytest

QUEUE = 'crash-test'
CYCLES = 6
PERSISTENT = pika.BasicProperties(delivery_mode=2)
CONNECTION_ERRORS = (pika.exceptions.AMQPError, OSError)


@dataclass
class Journal:
    """Everything the clients saw, in order (one lock, two threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 0
    confirmed: set[int] = field(default_factory=set)
    #: (event number, message id, redelivered) per delivery
    deliveries: list[tuple[int, int, bool]] = field(default_factory=list)
    #: message id -> event number of the commit-ok that made its ack durable
    committed: dict[int, int] = field(default_factory=dict)
    events: int = 0

    def event(self) -> int:
        self.events += 1
        return self.events


def publisher(url: str, journal: Journal, stop: threading.Event) -> None:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.confirm_delivery()
        while not stop.is_set():
            with journal.lock:
                message_id = journal.next_id
                journal.next_id += 1
            ch.basic_publish('', QUEUE, str(message_id).encode(), PERSISTENT)
            with journal.lock:
                journal.confirmed.add(message_id)       # basic_publish returned: acked
    except CONNECTION_ERRORS:
        pass


def commit(ch: Any, journal: Journal, pending: list[int]) -> None:
    """Commit the acks of ``pending``; once commit-ok is back they are durable."""
    ch.tx_commit()
    with journal.lock:
        done = journal.event()
        for message_id in pending:
            journal.committed.setdefault(message_id, done)
    pending.clear()


def consumer(url: str, journal: Journal, stop: threading.Event,
             final: bool = False) -> None:
    pending: list[int] = []
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.basic_qos(prefetch_count=20)
        ch.tx_select()
        for method, _props, body in ch.consume(QUEUE, inactivity_timeout=0.3):
            if method is None:
                if final:
                    break
                if stop.is_set():
                    break
                continue
            with journal.lock:
                journal.deliveries.append((journal.event(), int(body), method.redelivered))
            ch.basic_ack(method.delivery_tag)
            pending.append(int(body))
            if len(pending) >= 7 or final:
                commit(ch, journal, pending)
        if pending:
            commit(ch, journal, pending)
        conn.close()
    except CONNECTION_ERRORS:
        pass


@pytest.mark.slow
def test_random_sigkills_lose_nothing_confirmed(fresh_broker):
    seed = int(os.environ.get('CRASH_SEED', time.time()))
    rng = random.Random(seed)
    journal = Journal()
    fresh_broker.start()
    port = fresh_broker.port
    for _ in range(CYCLES):
        stop = threading.Event()
        threads = [threading.Thread(target=publisher, args=(fresh_broker.url, journal, stop)),
                   threading.Thread(target=consumer, args=(fresh_broker.url, journal, stop))]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        fresh_broker.kill()                 # SIGKILL, mid-traffic
        stop.set()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive()
        fresh_broker.start(port=port)
    # Drain whatever is left.
    consumer(fresh_broker.url, journal, threading.Event(), final=True)

    context = f'(CRASH_SEED={seed})'
    assert len(journal.confirmed) > 100, f'too little traffic to mean anything {context}'
    delivered_ids = {message_id for _, message_id, _ in journal.deliveries}
    lost = journal.confirmed - delivered_ids
    assert not lost, f'confirmed but never delivered: {sorted(lost)[:20]} {context}'
    seen: set[int] = set()
    for event, message_id, redelivered in journal.deliveries:
        committed_at = journal.committed.get(message_id)
        assert committed_at is None or event < committed_at, (
            f'message {message_id} came back after its ack was committed {context}')
        if message_id in seen:
            assert redelivered, f'duplicate of {message_id} without redelivered {context}'
        seen.add(message_id)
