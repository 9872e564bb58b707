"""A reply goes out before the frames its method causes, as RabbitMQ sends
them (py-amqp and kombu raise ConsumerCancelled when a basic.cancel comes
before the queue.delete-ok they wait for); and RabbitMQ's refusals."""

from __future__ import annotations

import struct

import amqp
import pytest
from pamqp import commands as C

from leveret.protocol.methods import decode_method

from ..rawamqp import RawClient


@pytest.fixture
def client(broker):
    with RawClient(broker.port) as c:
        c.handshake()
        c.open_channel(1)
        yield c


def frames(client: RawClient, count: int) -> list[object]:
    """The types of the next ``count`` methods; heartbeats and content skipped."""
    out: list[object] = []
    while len(out) < count:
        frame_type, _channel, payload = client.read_raw_frame()
        if frame_type == 1:
            out.append(type(decode_method(payload)))
    if out[-1] in (C.Basic.Deliver, C.Basic.GetOk):
        _, _, header = client.read_raw_frame()
        size = struct.unpack_from('>Q', header, 4)[0]
        while size > 0:
            size -= len(client.read_raw_frame()[2])
    return out


def test_queue_delete_ok_comes_before_the_cancel_of_its_consumer(client, unique):
    client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
    client.send_method(1, C.Queue.Delete(queue=unique))
    assert frames(client, 2) == [C.Queue.DeleteOk, C.Basic.Cancel]


def test_py_amqp_deletes_a_queue_it_consumes_from(broker, unique):
    with amqp.Connection(f'127.0.0.1:{broker.port}') as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish(amqp.Message(b'x'), routing_key=unique)
        ch.basic_consume(unique, callback=lambda message: None)
        conn.drain_events(timeout=5)          # the delivery
        assert ch.queue_delete(unique) == 0   # raised ConsumerCancelled: cancel came first
        with pytest.raises(amqp.exceptions.ConsumerCancelled):
            conn.drain_events(timeout=5)      # the cancel, after the delete-ok


def test_cancel_ok_comes_before_the_deliveries_to_the_next_single_active_consumer(
        client, unique):
    client.rpc(1, C.Queue.Declare(queue=unique,
                                  arguments={'x-single-active-consumer': True}),
               C.Queue.DeclareOk)
    client.rpc(1, C.Basic.Qos(prefetch_count=1), C.Basic.QosOk)
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='first'), C.Basic.ConsumeOk)
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='second'), C.Basic.ConsumeOk)
    for body in (b'1', b'2'):
        client.publish(1, '', unique, body)
    assert frames(client, 1) == [C.Basic.Deliver]        # to 'first', which holds it
    client.send_method(1, C.Basic.Cancel(consumer_tag='first'))
    assert frames(client, 2) == [C.Basic.CancelOk, C.Basic.Deliver]


def test_cancel_ok_comes_before_the_deliveries_to_lower_priority_consumers(client, unique):
    client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
    client.open_channel(2)
    client.rpc(2, C.Basic.Qos(prefetch_count=1), C.Basic.QosOk)
    client.rpc(2, C.Basic.Consume(queue=unique, consumer_tag='low',
                                  arguments={'x-priority': 1}), C.Basic.ConsumeOk)
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='high',
                                  arguments={'x-priority': 5}), C.Basic.ConsumeOk)
    client.rpc(1, C.Basic.Qos(prefetch_count=0), C.Basic.QosOk)
    client.rpc(1, C.Channel.Flow(active=False), C.Channel.FlowOk)
    client.publish(2, '', unique, b'1')
    assert frames(client, 1) == [C.Basic.Deliver]        # to 'low': 'high' is paused
    client.publish(2, '', unique, b'2')
    client.send_method(1, C.Basic.Cancel(consumer_tag='high'))
    client.send_method(2, C.Basic.Ack(delivery_tag=1))
    assert frames(client, 2) == [C.Basic.CancelOk, C.Basic.Deliver]


def test_recover_ok_comes_before_the_redeliveries(client, unique):
    client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
    client.publish(1, '', unique, b'1')
    assert frames(client, 1) == [C.Basic.Deliver]
    client.send_method(1, C.Basic.Recover(requeue=True))
    assert frames(client, 2) == [C.Basic.RecoverOk, C.Basic.Deliver]


def test_purge_ok_is_the_only_answer_to_a_purge(client, unique):
    client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
    client.publish(1, '', unique, b'1')
    client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
    assert frames(client, 1) == [C.Basic.Deliver]
    ok = client.rpc(1, C.Queue.Purge(queue=unique), C.Queue.PurgeOk)
    assert ok.message_count == 0           # the delivered one is not ready


@pytest.mark.parametrize('passive', [False, True])
def test_declaring_the_default_exchange_is_refused_even_when_passive(client, passive):
    client.send_method(1, C.Exchange.Declare(exchange='', exchange_type='direct',
                                             passive=passive))
    close = client.expect(C.Channel.Close, 1)
    assert close.reply_code == 403
    assert close.reply_text == 'ACCESS_REFUSED - operation not permitted on the default exchange'
