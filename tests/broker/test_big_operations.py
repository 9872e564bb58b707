"""Big operations run a slice per loop turn, and the result is the same as at
once: a channel closed (or a connection dropped) with more unacked messages
than a slice puts every one back, in order, flagged redelivered; a purge of
that many answers with the whole count; many consumers come and go."""

from __future__ import annotations

import pika
import pytest

from leveret.broker.model.queue import SLICE

from ..helpers import pika_connection
from .test_consume_and_ack import drain

MANY = SLICE * 2 + 3


def fill(ch, queue: str) -> None:
    ch.queue_declare(queue)
    for i in range(MANY):
        ch.basic_publish('', queue, b'%06d' % i)


@pytest.mark.parametrize('how', ['channel-close', 'tcp-drop'])
def test_every_unacked_message_goes_back_in_order(amqp_url, unique, how):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        fill(ch, unique)
        holder = pika.BlockingConnection(pika.URLParameters(amqp_url))
        hch = holder.channel()
        got = []
        hch.basic_consume(unique, lambda c, m, p, b: got.append(b))
        drain(holder, lambda: len(got) == MANY, timeout=60)
        assert len(got) == MANY
        if how == 'channel-close':
            hch.close()
            holder.close()
        else:
            holder._impl._transport._sock.close()   # noqa: SLF001 - a TCP drop, no close
        drain(conn, lambda: ch.queue_declare(unique, passive=True).method.message_count
              == MANY, timeout=60)
        assert ch.queue_declare(unique, passive=True).method.message_count == MANY
        back = []
        for _ in range(MANY):
            method, _props, body = ch.basic_get(unique, auto_ack=True)
            assert method.redelivered
            back.append(body)
        assert back == [b'%06d' % i for i in range(MANY)]


def test_a_big_purge_answers_with_the_whole_count(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        fill(ch, unique)
        assert ch.queue_purge(unique).method.message_count == MANY
        assert ch.queue_declare(unique, passive=True).method.message_count == 0


def test_many_consumers_on_one_channel_take_turns_and_go_with_it(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        consumers = pika.BlockingConnection(pika.URLParameters(amqp_url))
        cch = consumers.channel()
        cch.basic_qos(prefetch_count=1)
        got: dict[str, int] = {}
        for i in range(500):
            cch.basic_consume(unique, lambda c, m, p, b: got.__setitem__(
                m.consumer_tag, got.get(m.consumer_tag, 0) + 1), consumer_tag=f'c{i}')
        for _i in range(500):
            ch.basic_publish('', unique, b'm')
        drain(consumers, lambda: sum(got.values()) == 500, timeout=30)
        assert sorted(got.values()) == [1] * 500        # one each: nobody skipped
        assert ch.queue_declare(unique, passive=True).method.consumer_count == 500
        cch.close()
        consumers.close()
        method = ch.queue_declare(unique, passive=True).method
        assert (method.message_count, method.consumer_count) == (500, 0)


def test_busy_consumers_that_ack_get_every_message(amqp_url, unique):
    # Every consumer at its prefetch: publishes only append, and each ack
    # hands the next message to the consumer it freed.
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        consumers = pika.BlockingConnection(pika.URLParameters(amqp_url))
        cch = consumers.channel()
        cch.basic_qos(prefetch_count=1)
        got: list[bytes] = []

        def on_message(c, method, _props, body):
            got.append(body)
            c.basic_ack(method.delivery_tag)

        for i in range(50):
            cch.basic_consume(unique, on_message, consumer_tag=f'c{i}')
        for i in range(2000):
            ch.basic_publish('', unique, b'%d' % i)
        drain(consumers, lambda: len(got) == 2000, timeout=60)
        consumers.close()
        assert sorted(got, key=int) == [b'%d' % i for i in range(2000)]
