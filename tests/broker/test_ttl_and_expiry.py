"""x-message-ttl, per-message expiration and x-expires."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from ..helpers import count, get_within, pika_connection


@pytest.fixture
def ch(amqp_url):
    conn = pika_connection(amqp_url)
    yield conn.channel()
    conn.close()


def test_queue_ttl_expires_messages_that_are_never_delivered(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={'x-message-ttl': 200})
    ch.basic_publish('', unique, b'short-lived')
    assert count(ch, unique) == 1
    time.sleep(0.5)
    assert count(ch, unique) == 0
    assert ch.basic_get(unique) == (None, None, None)


def test_per_message_expiration(ch, unique):
    ch.queue_declare(unique, exclusive=True)
    ch.basic_publish('', unique, b'soon', pika.BasicProperties(expiration='100'))
    ch.basic_publish('', unique, b'later', pika.BasicProperties(expiration='60000'))
    time.sleep(0.4)
    assert ch.basic_get(unique, auto_ack=True)[2] == b'later'
    assert ch.basic_get(unique) == (None, None, None)


def test_expired_messages_are_dead_lettered_with_reason_expired(ch, unique):
    dlq = unique + '.dead'
    ch.queue_declare(dlq, exclusive=True)
    ch.queue_declare(unique, exclusive=True, arguments={
        'x-message-ttl': 100, 'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dlq})
    ch.basic_publish('', unique, b'x', pika.BasicProperties(expiration='50', headers={'a': 1}))
    method, props, body = get_within(ch, dlq)
    assert body == b'x'
    assert props.expiration is None           # the TTL does not follow the message
    death = props.headers['x-death'][0]
    assert death['reason'] == 'expired' and death['queue'] == unique
    assert death['original-expiration'] == '50'
    assert props.headers['a'] == 1


def test_ttl_applies_only_while_queued(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, exclusive=True, arguments={'x-message-ttl': 300})
        ch.basic_publish('', unique, b'held')
        method, _, _ = ch.basic_get(unique)     # delivered, then held past the TTL
        time.sleep(0.6)
        ch.basic_ack(method.delivery_tag)
        assert count(ch, unique) == 0


def test_ttl_zero_reaches_only_a_waiting_consumer(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, exclusive=True, arguments={'x-message-ttl': 0})
        ch.basic_publish('', unique, b'nobody waits')
        assert count(ch, unique) == 0
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append(b), auto_ack=True)
        ch.basic_publish('', unique, b'someone waits')
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert got == [b'someone waits']


def test_ttl_above_32_bits_is_accepted(ch, unique):
    # Celery's delayed-delivery queues go up to 2^27 seconds in ms.
    ch.queue_declare(unique, exclusive=True, arguments={'x-message-ttl': 134217728000})


def test_x_expires_deletes_an_unused_queue(ch, unique):
    ch.queue_declare(unique, arguments={'x-expires': 300})
    time.sleep(0.8)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(unique, passive=True)
    assert info.value.reply_code == 404


def test_x_expires_spares_a_queue_with_a_consumer(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, arguments={'x-expires': 300})
        tag = ch.basic_consume(unique, lambda *a: None)
        conn.process_data_events(0.8)
        assert count(ch, unique) == 0        # still there
        ch.basic_cancel(tag)
        ch.queue_delete(unique)


@pytest.mark.parametrize('arguments,text', [
    ({'x-message-ttl': -1}, "invalid arg 'x-message-ttl'"),
    ({'x-message-ttl': 'abc'}, '"expected integer, got longstr"'),
    ({'x-expires': 0}, '{value_zero,0}'),
])
def test_bad_ttl_arguments_are_406(amqp_url, unique, arguments, text):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, arguments=arguments)
        assert info.value.reply_code == 406 and text in info.value.reply_text
