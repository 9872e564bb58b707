"""x-max-length and x-max-length-bytes with each x-overflow mode."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import commands as C

from ..helpers import count, get_within, pika_connection
from ..rawamqp import RawClient


@pytest.fixture
def ch(amqp_url):
    conn = pika_connection(amqp_url)
    yield conn.channel()
    conn.close()


def bodies(ch, queue: str) -> list[bytes]:
    out = []
    while True:
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def test_drop_head_keeps_the_newest(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-max-length': 3})
    for i in range(6):
        ch.basic_publish('', unique, b'%d' % i)
    assert bodies(ch, unique) == [b'3', b'4', b'5']


def test_max_length_bytes_counts_body_bytes(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-max-length-bytes': 10})
    for body in (b'aaaa', b'bbbb', b'cccc'):
        ch.basic_publish('', unique, body)
    assert bodies(ch, unique) == [b'bbbb', b'cccc']


def test_max_length_zero_keeps_nothing(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-max-length': 0})
    ch.basic_publish('', unique, b'x')
    assert count(ch, unique) == 0


def overflow_client(broker, queue: str, arguments: dict) -> RawClient:
    client = RawClient(broker.port)
    client.handshake()
    client.open_channel(1)
    client.rpc(1, C.Queue.Declare(queue=queue, exclusive=True, arguments=arguments),
               C.Queue.DeclareOk)
    client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
    return client


def test_reject_publish_nacks_and_keeps_the_oldest(broker, unique):
    with overflow_client(broker, unique, {'x-max-length': 2,
                                          'x-overflow': 'reject-publish'}) as client:
        outcomes = []
        for i in range(4):
            client.publish(1, '', unique, b'%d' % i)
            _, frame = client.read_frame()
            outcomes.append(type(frame).__name__)
        assert outcomes == ['Ack', 'Ack', 'Nack', 'Nack']
        client.send_method(1, C.Queue.Declare(queue=unique, passive=True))
        assert client.expect(C.Queue.DeclareOk, 1).message_count == 2


def test_reject_publish_dlx_also_dead_letters_the_refused(broker, amqp_url, unique):
    dlq = unique + '.dead'
    with pika_connection(amqp_url) as conn:
        conn.channel().queue_declare(dlq)
    with overflow_client(broker, unique, {'x-max-length': 1,
                                          'x-overflow': 'reject-publish-dlx',
                                          'x-dead-letter-exchange': '',
                                          'x-dead-letter-routing-key': dlq}) as client:
        client.publish(1, '', unique, b'kept')
        client.expect(C.Basic.Ack, 1)
        client.publish(1, '', unique, b'refused')
        client.expect(C.Basic.Nack, 1)
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        _, props, body = get_within(ch, dlq)
        assert body == b'refused' and props.headers['x-death'][0]['reason'] == 'maxlen'
        ch.queue_delete(dlq)


def test_unknown_overflow_mode_is_406(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, arguments={'x-overflow': 'explode'})
        assert info.value.reply_code == 406 and 'invalid_overflow' in info.value.reply_text
