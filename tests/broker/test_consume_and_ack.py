"""basic.consume, qos, get, ack/nack/reject and redelivery, with real clients."""

from __future__ import annotations

import socket
import time

import kombu
import pika
import pika.exceptions
import pytest
from pamqp import commands as C

from ..helpers import pika_connection
from ..rawamqp import RawClient


def drain(conn: pika.BlockingConnection, until, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(0.05)


def fill(url: str, queue: str, bodies: list[bytes]) -> None:
    with pika_connection(url) as conn:
        ch = conn.channel()
        ch.queue_declare(queue)
        for body in bodies:
            ch.basic_publish('', queue, body)


def test_backlog_is_delivered_on_consume_in_order(amqp_url, unique):
    bodies = [b'%03d' % i for i in range(50)]
    fill(amqp_url, unique, bodies)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append(b), auto_ack=True)
        drain(conn, lambda: len(got) == 50)
        assert got == bodies
        ch.queue_delete(unique)


def test_prefetch_limits_unacked_deliveries_per_consumer(amqp_url, unique):
    fill(amqp_url, unique, [b'x'] * 10)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=3)
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append(m.delivery_tag))
        drain(conn, lambda: False, timeout=0.3)
        assert got == [1, 2, 3]
        ch.basic_ack(2)
        drain(conn, lambda: len(got) == 4)
        assert got == [1, 2, 3, 4]
        ch.queue_delete(unique)


def test_a_new_qos_applies_at_once_to_running_consumers(amqp_url, unique):
    # Celery raises prefetch at run time for every ETA task it holds.
    fill(amqp_url, unique, [b'x'] * 10)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=2)
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append(m.delivery_tag))
        drain(conn, lambda: False, timeout=0.3)
        assert len(got) == 2
        ch.basic_qos(prefetch_count=5)
        drain(conn, lambda: len(got) == 5)
        assert len(got) == 5
        ch.basic_qos(prefetch_count=0)   # 0 = unlimited
        drain(conn, lambda: len(got) == 10)
        assert len(got) == 10
        ch.queue_delete(unique)


def test_global_qos_is_shared_by_the_channels_consumers(amqp_url, unique):
    fill(amqp_url, unique + 'a', [b'a'] * 5)
    fill(amqp_url, unique + 'b', [b'b'] * 5)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=4, global_qos=True)
        got = []
        ch.basic_consume(unique + 'a', lambda c, m, p, b: got.append(b))
        ch.basic_consume(unique + 'b', lambda c, m, p, b: got.append(b))
        drain(conn, lambda: False, timeout=0.3)
        assert len(got) == 4
        ch.queue_delete(unique + 'a')
        ch.queue_delete(unique + 'b')


def test_round_robin_across_consumers(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        got: dict[str, int] = {'a': 0, 'b': 0}

        def on(name):
            return lambda c, m, p, b: got.__setitem__(name, got[name] + 1)

        ch.basic_consume(unique, on('a'), auto_ack=True)
        ch.basic_consume(unique, on('b'), auto_ack=True)
        for _ in range(20):
            ch.basic_publish('', unique, b'x')
        drain(conn, lambda: sum(got.values()) == 20)
        assert got == {'a': 10, 'b': 10}
        ch.queue_delete(unique)


def test_unacked_return_in_order_with_redelivered_when_the_channel_closes(amqp_url, unique):
    bodies = [b'%d' % i for i in range(6)]
    fill(amqp_url, unique, bodies)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append((m.delivery_tag, b)))
        drain(conn, lambda: len(got) == 6)
        ch.basic_ack(2)
        ch.basic_ack(5)
        ch.close()
        ch = conn.channel()
        again = []
        ch.basic_consume(unique, lambda c, m, p, b: again.append((b, m.redelivered)),
                         auto_ack=True)
        drain(conn, lambda: len(again) == 4)
        assert again == [(b'0', True), (b'2', True), (b'3', True), (b'5', True)]
        ch.queue_delete(unique)


def test_unacked_return_when_the_tcp_connection_simply_drops(amqp_url, unique):
    fill(amqp_url, unique, [b'a', b'b', b'c'])
    dropped = pika_connection(amqp_url)
    ch = dropped.channel()
    got = []
    ch.basic_consume(unique, lambda c, m, p, b: got.append(b))
    drain(dropped, lambda: len(got) == 3)
    dropped._impl._transport._sock.shutdown(socket.SHUT_RDWR)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        deadline = time.monotonic() + 5
        while ch.queue_declare(unique, passive=True).method.message_count < 3:
            assert time.monotonic() < deadline, 'messages were not requeued'
            time.sleep(0.05)
        method, _, body = ch.basic_get(unique, auto_ack=True)
        assert (body, method.redelivered) == (b'a', True)
        ch.queue_delete(unique)


def test_get_on_a_queue_that_another_connection_consumes(amqp_url, unique):
    with pika_connection(amqp_url) as consumer, pika_connection(amqp_url) as getter:
        cch = consumer.channel()
        cch.queue_declare(unique)
        cch.basic_qos(prefetch_count=1)
        cch.basic_consume(unique, lambda *a: None)
        gch = getter.channel()
        for body in (b'1', b'2', b'3'):
            gch.basic_publish('', unique, body)
        consumer.process_data_events(0.2)
        method, _, body = gch.basic_get(unique)
        assert body == b'2' and method.message_count == 1
        gch.basic_reject(method.delivery_tag, requeue=True)
        method, _, body = gch.basic_get(unique, auto_ack=True)
        assert (body, method.redelivered) == (b'2', True)
        method, _, body = gch.basic_get(unique, auto_ack=True)
        assert body == b'3'
        assert gch.basic_get(unique) == (None, None, None)
        gch.queue_delete(unique)


def test_nack_multiple_requeues_and_reject_drops(amqp_url, unique):
    fill(amqp_url, unique, [b'1', b'2', b'3'])
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        tags = [ch.basic_get(unique)[0].delivery_tag for _ in range(3)]
        ch.basic_reject(tags[0], requeue=False)
        ch.basic_nack(tags[2], multiple=True, requeue=True)
        assert ch.queue_declare(unique, passive=True).method.message_count == 2
        bodies = [ch.basic_get(unique, auto_ack=True)[2] for _ in range(2)]
        assert bodies == [b'2', b'3']
        ch.queue_delete(unique)


def test_unknown_delivery_tag_is_406(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.basic_ack(99)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, auto_delete=True)
        assert info.value.reply_code == 406
        assert info.value.reply_text == 'PRECONDITION_FAILED - unknown delivery tag 99'


def test_double_ack_is_406(amqp_url, unique):
    fill(amqp_url, unique, [b'x'])
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        method, _, _ = ch.basic_get(unique)
        ch.basic_ack(method.delivery_tag)
        ch.basic_ack(method.delivery_tag)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, passive=True)
        assert info.value.reply_code == 406
        conn.channel().queue_delete(unique)


def test_recover_requeues_everything_unacked(amqp_url, unique):
    fill(amqp_url, unique, [b'1', b'2'])
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.basic_get(unique)
        ch.basic_get(unique)
        ch.basic_recover(requeue=True)
        method, _, body = ch.basic_get(unique, auto_ack=True)
        assert (body, method.redelivered) == (b'1', True)
        ch.queue_delete(unique)


def test_duplicate_consumer_tag_is_530(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='dup'), C.Basic.ConsumeOk)
        client.send_method(1, C.Basic.Consume(queue=unique, consumer_tag='dup'))
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 530
        assert close.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 'dup'"


def test_exclusive_consumer_keeps_others_out(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_consume(unique, lambda *a: None, exclusive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().basic_consume(unique, lambda *a: None)
        assert info.value.reply_code == 403
        assert info.value.reply_text == (
            f"ACCESS_REFUSED - queue '{unique}' in vhost '/' in exclusive use")
        conn.channel().queue_delete(unique)



def test_empty_consumer_tag_gets_an_amq_ctag(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        ok = client.rpc(1, C.Basic.Consume(queue=unique), C.Basic.ConsumeOk)
        assert ok.consumer_tag.startswith('amq.ctag-')


def test_kombu_simple_queue_round_trip(amqp_url, unique):
    with kombu.Connection(amqp_url) as conn:
        queue = conn.SimpleQueue(unique)
        queue.put({'n': 1})
        message = queue.get(timeout=5)
        assert message.payload == {'n': 1}
        message.ack()
        queue.close()
        conn.default_channel.queue_delete(unique)


def test_channel_flow_pauses_and_resumes_deliveries(broker, unique):
    # RabbitMQ refuses flow(active=false); Leveret does what the spec says.
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, exclusive=True), C.Queue.DeclareOk)
        ok = client.rpc(1, C.Channel.Flow(active=False), C.Channel.FlowOk)
        assert ok.active is False
        client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c', no_ack=True),
                   C.Basic.ConsumeOk)
        client.publish(1, '', unique, b'held back')
        with pytest.raises(TimeoutError):
            client.expect(C.Basic.Deliver, 1, timeout=0.5)
        client.send_method(1, C.Channel.Flow(active=True))
        client.expect(C.Channel.FlowOk, 1)
        assert client.expect(C.Basic.Deliver, 1).consumer_tag == 'c'


def test_qos_ok_comes_before_the_deliveries_it_allows(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, exclusive=True), C.Queue.DeclareOk)
        client.rpc(1, C.Basic.Qos(prefetch_count=1), C.Basic.QosOk)
        for _ in range(3):
            client.publish(1, '', unique, b'x')
        client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
        client.expect(C.Basic.Deliver, 1)
        client.send_method(1, C.Basic.Qos(prefetch_count=3))
        _, frame = client.read_frame()
        while type(frame).__name__ in ('ContentHeader', 'ContentBody'):
            _, frame = client.read_frame()
        assert isinstance(frame, C.Basic.QosOk)
        client.expect(C.Basic.Deliver, 1)
