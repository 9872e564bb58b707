"""x-delivery-count on redelivered messages and x-delivery-limit on every
queue type: poison messages stop looping."""

from __future__ import annotations

import pytest

from ..helpers import count, get_within, pika_connection


@pytest.mark.parametrize('queue_type', ['classic', 'quorum'])
def test_redeliveries_carry_x_delivery_count(amqp_url, unique, queue_type):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True, arguments={'x-queue-type': queue_type})
        ch.basic_publish('', unique, b'x')
        seen = []
        for _ in range(3):
            method, props, _ = ch.basic_get(unique)
            seen.append((method.redelivered, (props.headers or {}).get('x-delivery-count')))
            ch.basic_nack(method.delivery_tag, requeue=True)
        assert seen == [(False, None), (True, 1), (True, 2)]
        ch.queue_delete(unique)


@pytest.mark.parametrize('queue_type', ['classic', 'quorum'])
def test_past_the_delivery_limit_a_message_is_dead_lettered(amqp_url, unique, queue_type):
    dlq = unique + '.poison'
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(dlq, exclusive=True)
        ch.queue_declare(unique, durable=True, arguments={
            'x-queue-type': queue_type, 'x-delivery-limit': 2,
            'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq})
        ch.basic_publish('', unique, b'poison')
        deliveries = 0
        while True:
            method, _, _ = ch.basic_get(unique)
            if method is None:
                break
            deliveries += 1
            ch.basic_nack(method.delivery_tag, requeue=True)
        assert deliveries == 3          # the first delivery plus two redeliveries
        _, props, body = get_within(ch, dlq)
        assert body == b'poison'
        assert props.headers['x-death'][0]['reason'] == 'delivery_limit'
        ch.queue_delete(unique)


def test_without_a_dead_letter_exchange_the_poison_is_dropped(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, exclusive=True, arguments={'x-delivery-limit': 0})
        ch.basic_publish('', unique, b'poison')
        method, _, _ = ch.basic_get(unique)
        ch.basic_nack(method.delivery_tag, requeue=True)
        assert count(ch, unique) == 0


def test_a_consumer_that_dies_counts_as_a_failed_delivery(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True, arguments={'x-delivery-limit': 1})
        ch.basic_publish('', unique, b'x')
    seen = []
    for _ in range(3):
        # Each connection closes with the delivery unacked: a failed delivery.
        with pika_connection(amqp_url) as conn:
            method, props, _ = conn.channel().basic_get(unique)
            seen.append(None if method is None
                        else (props.headers or {}).get('x-delivery-count', 0))
    assert seen == [0, 1, None]      # the second failure is over the limit: dropped
    with pika_connection(amqp_url) as conn:
        conn.channel().queue_delete(unique)
