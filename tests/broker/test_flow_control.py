"""Back-pressure: queue flow control and the memory alarm lose nothing and
never hold publishers back when consumers are stuck."""

from __future__ import annotations

import os
import platform
import threading
import time

import pika
import pytest
from pamqp import commands as C
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ..client_fixtures import wait_until
from ..rawamqp import RawClient


def test_flood_with_an_active_consumer_delivers_everything_in_order(amqp_url, unique):
    total = 30000
    got: list[int] = []
    ready = threading.Event()

    def consume() -> None:
        with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
            ch = conn.channel()
            ch.queue_declare(unique)
            ch.basic_qos(prefetch_count=500)

            def on_message(c, method, props, body):
                got.append(int(body))
                if method.delivery_tag % 100 == 0:
                    c.basic_ack(method.delivery_tag, multiple=True)

            ch.basic_consume(unique, on_message)
            ready.set()
            deadline = time.monotonic() + 60
            while len(got) < total and time.monotonic() < deadline:
                conn.process_data_events(0.1)
            ch.queue_delete(unique)

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert ready.wait(10)
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        ch = conn.channel()
        for i in range(total):
            ch.basic_publish('', unique, b'%d' % i)
    consumer.join(90)
    assert got == list(range(total))


def test_a_stuck_consumer_does_not_hold_publishers_back(broker, unique):
    with RawClient(broker.port) as consumer, RawClient(broker.port) as publisher:
        consumer.handshake()
        consumer.open_channel(1)
        consumer.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        consumer.rpc(1, C.Basic.Qos(prefetch_count=1), C.Basic.QosOk)
        consumer.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='stuck'), C.Basic.ConsumeOk)
        # The consumer holds its one message and never acks (a Celery ETA task).
        publisher.handshake()
        publisher.open_channel(1)
        publisher.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        total = 20000
        for _ in range(0, total, 1000):
            publisher.send(b''.join(_publish_frames(unique, 1000)))
        confirmed = 0
        while confirmed < total:
            confirmed = publisher.expect(C.Basic.Ack, 1, timeout=20).delivery_tag
        publisher.send_method(1, C.Queue.Declare(queue=unique, passive=True))
        assert publisher.expect(C.Queue.DeclareOk, 1).message_count == total - 1


def _publish_frames(queue: str, count: int) -> list[bytes]:
    from pamqp import frame as pframe
    one = (pframe.marshal(C.Basic.Publish(exchange='', routing_key=queue), 1)
           + pframe.marshal(ContentHeader(0, 4, C.Basic.Properties()), 1)
           + pframe.marshal(ContentBody(b'data'), 1))
    return [one] * count


def test_memory_alarm_blocks_publishers_and_unblocks_them(broker_factory, unique):
    broker = broker_factory(extra_env={'LEVERET_MEMORY_HIGH_WATERMARK': str(1 << 20)}).start()
    body = b'x' * 65536
    with RawClient(broker.port) as publisher, RawClient(broker.port) as consumer:
        publisher.handshake()
        publisher.open_channel(1)
        publisher.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
        for _ in range(20):          # 1.25 MiB, above the 1 MiB watermark
            publisher.publish(1, '', unique, body)
        publisher.expect(C.Connection.Blocked, 0)
        # A consumer is never blocked: draining the queue clears the alarm.
        consumer.handshake()
        consumer.open_channel(1)
        taken = 0
        while True:
            consumer.send_method(1, C.Basic.Get(queue=unique, no_ack=True))
            _, frame = consumer.read_frame()
            if isinstance(frame, C.Basic.GetEmpty):
                break
            assert isinstance(frame, C.Basic.GetOk)
            consumer.expect(ContentHeader, 1)
            consumer.expect(ContentBody, 1)
            taken += 1
        publisher.expect(C.Connection.Unblocked, 0)
        assert taken == 20            # everything published before the alarm
        publisher.publish(1, '', unique, b'after')
        publisher.send_method(1, C.Queue.Declare(queue=unique, passive=True))
        assert publisher.expect(C.Queue.DeclareOk, 1).message_count == 1


def _rss_bytes(pid: int) -> int:
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise AssertionError('no VmRSS')


@pytest.mark.skipif(not os.path.exists('/proc/self/status') or platform.libc_ver()[0] != 'glibc',
                    reason='reads /proc, trims with glibc')
def test_memory_of_a_drained_backlog_goes_back_to_the_system(broker_factory, unique):
    broker = broker_factory().start()
    pid = broker.proc.pid
    before = _rss_bytes(pid)
    body = b'x' * 8192
    count = 12_000                    # 96 MiB of bodies
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        channel = conn.channel()
        channel.queue_declare(unique)
        for _ in range(count):
            channel.basic_publish('', unique, body)
        assert channel.queue_declare(unique, passive=True).method.message_count == count
        assert _rss_bytes(pid) > before + (64 << 20)
        taken = 0
        for method, _, _ in channel.consume(unique, auto_ack=True, inactivity_timeout=5):
            if method is None:
                break
            taken += 1
            if taken == count:
                break
        channel.cancel()
        assert taken == count
    wait_until(lambda: _rss_bytes(pid) < before + (32 << 20), timeout=20,
               message=lambda: f'RSS still {_rss_bytes(pid) >> 20} MiB, '
                               f'{before >> 20} MiB before the backlog')
