"""Consumer priorities (the x-priority argument of basic.consume), as RabbitMQ:
higher-priority consumers get the messages while they have credit; lower ones
get what the higher ones cannot take."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from ..helpers import pika_connection


def _settle(conn: pika.BlockingConnection, rounds: int = 6) -> None:
    for _ in range(rounds):
        conn.process_data_events(time_limit=0.05)


def _consumer(conn: pika.BlockingConnection, queue: str, prefetch: int, priority: int | None,
              received: list[bytes], ack: bool = False):
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)

    def on_message(ch, method, props, body):
        received.append(body)
        if ack:
            ch.basic_ack(method.delivery_tag)

    arguments = {'x-priority': priority} if priority is not None else None
    ch.basic_consume(queue, on_message, arguments=arguments)
    return ch


def test_the_higher_priority_consumer_gets_everything_it_has_credit_for(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        conn.channel().queue_declare(unique)
        low: list[bytes] = []
        high: list[bytes] = []
        _consumer(conn, unique, 100, None, low)         # priority 0, registered first
        _consumer(conn, unique, 100, 10, high)
        publisher = conn.channel()
        for i in range(5):
            publisher.basic_publish('', unique, str(i).encode())
        _settle(conn)
        assert high == [b'0', b'1', b'2', b'3', b'4'] and low == []


def test_lower_priority_consumers_get_what_the_higher_cannot_take(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        conn.channel().queue_declare(unique)
        low: list[bytes] = []
        high: list[bytes] = []
        _consumer(conn, unique, 100, -5, low)
        _consumer(conn, unique, 2, 5, high)            # never acks: room for two
        publisher = conn.channel()
        for i in range(5):
            publisher.basic_publish('', unique, str(i).encode())
        _settle(conn)
        assert high == [b'0', b'1'] and low == [b'2', b'3', b'4']


def test_consumers_of_the_same_priority_share_in_turn(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        conn.channel().queue_declare(unique)
        low: list[bytes] = []
        first: list[bytes] = []
        second: list[bytes] = []
        _consumer(conn, unique, 100, 1, low)
        _consumer(conn, unique, 100, 7, first, ack=True)
        _consumer(conn, unique, 100, 7, second, ack=True)
        publisher = conn.channel()
        for i in range(6):
            publisher.basic_publish('', unique, str(i).encode())
        _settle(conn)
        assert low == [] and len(first) == len(second) == 3
        assert sorted(first + second) == [str(i).encode() for i in range(6)]


@pytest.mark.parametrize('value,kind', [('high', 'longstr'), (True, 'bool')])
def test_a_priority_that_is_not_an_integer_is_refused(amqp_url, unique, value, kind):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.basic_consume(unique, lambda *args: None, arguments={'x-priority': value})
        assert info.value.reply_code == 406
        assert f'expected integer, got {kind}' in info.value.reply_text
