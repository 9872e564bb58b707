"""x-single-active-consumer: one consumer gets the messages, the next in
line takes over when it goes, as with RabbitMQ."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from ..helpers import pika_connection

SAC = {'x-single-active-consumer': True}


def _take(conn: pika.BlockingConnection, received: list, count: int,
          timeout: float = 5.0) -> None:
    """Process I/O until ``received`` holds ``count`` messages."""
    for _ in range(int(timeout / 0.05)):
        if len(received) >= count:
            return
        conn.process_data_events(time_limit=0.05)
    raise AssertionError(f'{len(received)} of {count} messages arrived')


def test_only_the_first_consumer_gets_messages_and_the_next_takes_over(amqp_url, unique):
    with pika_connection(amqp_url) as first, pika_connection(amqp_url) as second:
        ch1, ch2 = first.channel(), second.channel()
        ch1.queue_declare(unique, arguments=SAC)
        got1: list[tuple[bytes, bool]] = []
        got2: list[tuple[bytes, bool]] = []

        def on1(ch, method, props, body):
            got1.append((body, method.redelivered))

        def on2(ch, method, props, body):
            got2.append((body, method.redelivered))
            ch.basic_ack(method.delivery_tag)

        tag1 = ch1.basic_consume(unique, on1)          # active, never acks
        ch2.basic_consume(unique, on2)                 # waiting
        for i in range(6):
            ch1.basic_publish('', unique, str(i).encode())
        _take(first, got1, 6)
        second.process_data_events(time_limit=0.3)
        assert got2 == []                              # not while the first is there
        assert [body for body, _ in got1] == [str(i).encode() for i in range(6)]

        # The first cancels: what it holds unacked stays with it; new messages
        # go to the second.
        ch1.basic_cancel(tag1)
        ch1.basic_publish('', unique, b'6')
        _take(second, got2, 1)
        assert got2 == [(b'6', False)]

        # The first's connection goes: its unacked messages come back, in
        # order, to the consumer now active.
        first.close()
        _take(second, got2, 7)
        assert got2[1:] == [(str(i).encode(), True) for i in range(6)]


def test_a_consumer_waiting_in_line_is_not_limited_by_the_active_ones_credit(amqp_url, unique):
    # The active consumer's prefetch holds messages back; they do not spill
    # over to the one waiting.
    with pika_connection(amqp_url) as first, pika_connection(amqp_url) as second:
        ch1, ch2 = first.channel(), second.channel()
        ch1.queue_declare(unique, arguments=SAC)
        ch1.basic_qos(prefetch_count=2)
        got1: list[bytes] = []
        got2: list[bytes] = []
        ch1.basic_consume(unique, lambda ch, m, p, body: got1.append(body))
        ch2.basic_consume(unique, lambda ch, m, p, body: got2.append(body))
        for i in range(5):
            ch1.basic_publish('', unique, str(i).encode())
        _take(first, got1, 2)
        second.process_data_events(time_limit=0.3)
        first.process_data_events(time_limit=0.1)
        assert got1 == [b'0', b'1'] and got2 == []
        assert ch2.queue_declare(unique, passive=True).method.message_count == 3


def test_a_non_boolean_value_is_refused(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, arguments={'x-single-active-consumer': 'yes'})
        assert info.value.reply_code == 406
        assert 'x-single-active-consumer' in info.value.reply_text
