"""Dead-letter exchanges: reasons, x-death as RabbitMQ writes it, cycles."""

from __future__ import annotations

import time

import pika
import pytest

from ..helpers import count, get_within, pika_connection


@pytest.fixture
def ch(amqp_url):
    conn = pika_connection(amqp_url)
    yield conn.channel()
    conn.close()


def dead_letter_pair(ch, name: str, **extra) -> str:
    """A queue whose dead letters go to ``<name>.dead`` through a fanout DLX."""
    dlx, dlq = name + '.dlx', name + '.dead'
    ch.exchange_declare(dlx, 'fanout', auto_delete=True)
    ch.queue_declare(dlq, exclusive=True)
    ch.queue_bind(dlq, dlx, '')
    ch.queue_declare(name, exclusive=True,
                     arguments={'x-dead-letter-exchange': dlx, **extra})
    return dlq


@pytest.mark.parametrize('settle', ['reject', 'nack'])
def test_rejected_without_requeue_is_dead_lettered(ch, unique, settle):
    dlq = dead_letter_pair(ch, unique)
    ch.basic_publish('', unique, b'bad', pika.BasicProperties(headers={'keep': 'me'}))
    method, _, _ = ch.basic_get(unique)
    if settle == 'reject':
        ch.basic_reject(method.delivery_tag, requeue=False)
    else:
        ch.basic_nack(method.delivery_tag, requeue=False)
    method, props, body = get_within(ch, dlq)
    assert body == b'bad'
    assert method.exchange == unique + '.dlx' and method.routing_key == unique
    headers = props.headers
    assert headers['keep'] == 'me'
    [death] = headers['x-death']
    assert set(death) == {'count', 'reason', 'queue', 'time', 'exchange', 'routing-keys'}
    assert (death['count'], death['reason'], death['queue'], death['exchange'],
            death['routing-keys']) == (1, 'rejected', unique, '', [unique])
    assert headers['x-first-death-reason'] == 'rejected'
    assert headers['x-first-death-queue'] == unique
    assert headers['x-first-death-exchange'] == ''


def test_dead_letter_routing_key_replaces_the_original(ch, unique):
    target = unique + '.target'
    ch.queue_declare(target, exclusive=True)
    ch.queue_declare(unique, exclusive=True, arguments={
        'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': target})
    ch.basic_publish('', unique, b'x')
    method, _, _ = ch.basic_get(unique)
    ch.basic_reject(method.delivery_tag, requeue=False)
    method, props, _ = get_within(ch, target)
    assert method.routing_key == target
    assert props.headers['x-death'][0]['routing-keys'] == [unique]


def test_x_death_counts_repeated_deaths_in_the_same_queue(ch, unique):
    dlq = dead_letter_pair(ch, unique)
    headers = None
    for _ in range(3):
        ch.basic_publish('', unique, b'again', pika.BasicProperties(headers=headers))
        method, _, _ = ch.basic_get(unique)
        ch.basic_reject(method.delivery_tag, requeue=False)
        _, props, _ = get_within(ch, dlq)
        headers = props.headers
    [death] = headers['x-death']
    assert death['count'] == 3


def test_overflow_drop_head_dead_letters_with_reason_maxlen(ch, unique):
    dlq = dead_letter_pair(ch, unique, **{'x-max-length': 2})
    for body in (b'1', b'2', b'3'):
        ch.basic_publish('', unique, body)
    method, props, body = get_within(ch, dlq)
    assert body == b'1' and props.headers['x-death'][0]['reason'] == 'maxlen'
    assert count(ch, unique) == 2


def test_a_dead_letter_cycle_does_not_loop_forever(ch, unique):
    # The queue dead-letters expired messages back to itself.
    ch.queue_declare(unique, exclusive=True, arguments={
        'x-message-ttl': 50, 'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': unique})
    ch.basic_publish('', unique, b'round and round')
    time.sleep(0.5)
    assert count(ch, unique) == 0      # went round once, then was dropped


def test_a_cycle_through_a_rejection_goes_on(ch, unique):
    # Rejected messages may come back to the same queue: a client chose it.
    ch.queue_declare(unique, exclusive=True, arguments={
        'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': unique})
    ch.basic_publish('', unique, b'x')
    for round_ in (1, 2):
        method, props, _ = ch.basic_get(unique)
        if round_ == 2:
            assert props.headers['x-death'][0]['count'] == 1
        ch.basic_reject(method.delivery_tag, requeue=False)
        deadline = time.monotonic() + 5
        while count(ch, unique) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    _, props, _ = ch.basic_get(unique, auto_ack=True)
    assert props.headers['x-death'][0] == {**props.headers['x-death'][0], 'count': 2,
                                           'reason': 'rejected'}


def test_missing_dead_letter_exchange_drops_quietly(ch, unique):
    ch.queue_declare(unique, exclusive=True, arguments={
        'x-dead-letter-exchange': unique + '.nowhere'})
    ch.basic_publish('', unique, b'x')
    method, _, _ = ch.basic_get(unique)
    ch.basic_reject(method.delivery_tag, requeue=False)
    assert count(ch, unique) == 0


def test_dead_letter_strategy_is_accepted(ch, unique):
    ch.queue_declare(unique, durable=True, arguments={
        'x-queue-type': 'quorum', 'x-dead-letter-exchange': 'x',
        'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish'})
    ch.queue_delete(unique)


def test_dead_letter_routing_key_needs_an_exchange(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, arguments={'x-dead-letter-routing-key': 'k'})
        assert info.value.reply_code == 406
        assert 'routing_key_but_no_dlx_defined' in info.value.reply_text
