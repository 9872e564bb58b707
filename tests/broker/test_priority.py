"""x-max-priority: highest priority first, FIFO within a level."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from ..helpers import pika_connection


@pytest.fixture
def ch(amqp_url):
    conn = pika_connection(amqp_url)
    yield conn.channel()
    conn.close()


def publish(ch, queue: str, body: bytes, priority: int | None) -> None:
    ch.basic_publish('', queue, body, pika.BasicProperties(priority=priority))


def test_highest_priority_first_and_fifo_within_a_level(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-max-priority': 10})
    for body, priority in [(b'p1', 1), (b'p9', 9), (b'p5a', 5), (b'p0', None),
                           (b'p7', 7), (b'p5b', 5), (b'p200', 200)]:
        publish(ch, unique, body, priority)
    order = [ch.basic_get(unique, auto_ack=True)[2] for _ in range(7)]
    # Above the maximum counts as the maximum (10, above 9); absent counts as 0.
    assert order == [b'p200', b'p9', b'p7', b'p5a', b'p5b', b'p1', b'p0']


def test_requeued_messages_keep_their_place_in_their_level(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-max-priority': 5})
    for body, priority in [(b'a', 3), (b'b', 3), (b'c', 1)]:
        publish(ch, unique, body, priority)
    method, _, body = ch.basic_get(unique)
    assert body == b'a'
    ch.basic_nack(method.delivery_tag, requeue=True)
    order = [ch.basic_get(unique, auto_ack=True)[2] for _ in range(3)]
    assert order == [b'a', b'b', b'c']


def test_priority_property_travels_unchanged_on_other_queues(ch, unique):
    ch.queue_declare(unique, exclusive=True)
    publish(ch, unique, b'x', 7)
    _, props, _ = ch.basic_get(unique, auto_ack=True)
    assert props.priority == 7


def test_max_priority_above_255_is_406(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, arguments={'x-max-priority': 256})
        assert info.value.reply_code == 406
        assert '{max_value_exceeded,256}' in info.value.reply_text
