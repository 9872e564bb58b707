"""exchange.declare / delete / bind and routing by every exchange type."""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from ..helpers import pika_connection


def routed(ch, exchange: str, routing_key: str, queues: list[str], headers=None) -> list[str]:
    """Publish once and return the queues the message reached."""
    for q in queues:
        ch.queue_purge(q)
    ch.basic_publish(exchange, routing_key, b'm',
                     pika.BasicProperties(headers=headers) if headers else None)
    time.sleep(0.05)
    return [q for q in queues if ch.queue_declare(q, passive=True).method.message_count]


@pytest.fixture
def ch(amqp_url):
    conn = pika_connection(amqp_url)
    yield conn.channel()
    conn.close()


def test_predeclared_exchanges_exist(ch):
    for name, kind in [('amq.direct', 'direct'), ('amq.fanout', 'fanout'),
                       ('amq.topic', 'topic'), ('amq.headers', 'headers'),
                       ('amq.match', 'headers')]:
        ch.exchange_declare(name, kind, passive=True)
        ch.exchange_declare(name, kind, durable=True)


def test_direct_routing(ch, unique):
    ch.exchange_declare(unique, 'direct', auto_delete=True)
    qs = [unique + '.a', unique + '.b']
    for q, key in zip(qs, ['red', 'blue'], strict=True):
        ch.queue_declare(q, exclusive=True)
        ch.queue_bind(q, unique, key)
    assert routed(ch, unique, 'red', qs) == [qs[0]]
    assert routed(ch, unique, 'green', qs) == []


def test_fanout_routing(ch, unique):
    ch.exchange_declare(unique, 'fanout', auto_delete=True)
    qs = [unique + '.a', unique + '.b']
    for q in qs:
        ch.queue_declare(q, exclusive=True)
        ch.queue_bind(q, unique, 'ignored')
    assert routed(ch, unique, 'anything', qs) == qs


@pytest.mark.parametrize('binding,key,match', [
    ('a.*.c', 'a.b.c', True), ('a.*.c', 'a.b.b.c', False), ('a.#', 'a', True),
    ('a.#', 'a.b.c', True), ('#', '', True), ('#.c', 'a.b.c', True), ('*', '', True),
    ('*.b', 'a.b', True), ('a.*', 'a', False), ('#.b.#', 'x.b.y', True),
    ('worker.#', 'worker.heartbeat', True), ('*.*.*.1.#', '0.0.0.1.x', True),
])
def test_topic_routing(ch, unique, binding, key, match):
    ch.exchange_declare(unique, 'topic', auto_delete=True)
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, unique, binding)
    assert routed(ch, unique, key, [unique]) == ([unique] if match else [])


def test_headers_routing_all_and_any(ch, unique):
    ch.exchange_declare(unique, 'headers', auto_delete=True)
    qa, qb = unique + '.all', unique + '.any'
    ch.queue_declare(qa, exclusive=True)
    ch.queue_declare(qb, exclusive=True)
    ch.queue_bind(qa, unique, '', arguments={'x-match': 'all', 'k1': 'v1', 'k2': 'v2'})
    ch.queue_bind(qb, unique, '', arguments={'x-match': 'any', 'k1': 'v1', 'k2': 'v2'})
    assert routed(ch, unique, '', [qa, qb], {'k1': 'v1', 'k2': 'v2'}) == [qa, qb]
    assert routed(ch, unique, '', [qa, qb], {'k1': 'v1'}) == [qb]
    assert routed(ch, unique, '', [qa, qb], {'k3': 'v3'}) == []


def test_exchange_to_exchange_bindings(ch, unique):
    src, dst = unique + '.src', unique + '.dst'
    ch.exchange_declare(src, 'topic')
    ch.exchange_declare(dst, 'direct', auto_delete=True)
    ch.exchange_bind(dst, src, 'a.#')
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, dst, 'a.b')
    assert routed(ch, src, 'a.b', [unique]) == [unique]
    assert routed(ch, src, 'a.c', [unique]) == []
    ch.exchange_unbind(dst, src, 'a.#')
    assert routed(ch, src, 'a.b', [unique]) == []
    ch.exchange_delete(src)


def test_exchange_binding_cycles_do_not_loop(ch, unique):
    a, b = unique + '.a', unique + '.b'
    ch.exchange_declare(a, 'fanout', auto_delete=True)
    ch.exchange_declare(b, 'fanout', auto_delete=True)
    ch.exchange_bind(b, a, '')
    ch.exchange_bind(a, b, '')
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, b, '')
    assert routed(ch, a, 'x', [unique]) == [unique]
    assert ch.queue_declare(unique, passive=True).method.message_count == 1


def test_alternate_exchange_gets_unroutable_messages(ch, unique):
    ae = unique + '.ae'
    ch.exchange_declare(ae, 'fanout', auto_delete=True)
    ch.exchange_declare(unique, 'direct', auto_delete=True,
                        arguments={'alternate-exchange': ae})
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, ae, '')
    assert routed(ch, unique, 'nowhere', [unique]) == [unique]


def test_inequivalent_exchange_redeclare_is_406(ch, unique, amqp_url):
    ch.exchange_declare(unique, 'direct')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare(unique, 'fanout')
    assert info.value.reply_code == 406
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{unique}' in vhost "
        f"'/': received 'fanout' but current is 'direct'")
    with pika_connection(amqp_url) as conn:
        conn.channel().exchange_delete(unique)


def test_reserved_and_unknown_exchange_declares(ch, amqp_url, unique):
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare('amq.custom', 'direct')
    assert info.value.reply_code == 403
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().exchange_declare(unique, 'x-no-such-type')
        # A channel error (RabbitMQ 4.x), not a connection close.
        assert info.value.reply_code == 406
        assert conn.is_open
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().exchange_declare(unique, 'direct', passive=True)
        assert info.value.reply_code == 404


def test_delete_if_unused(ch, unique):
    ch.exchange_declare(unique, 'direct')
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, unique, 'k')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_delete(unique, if_unused=True)
    assert info.value.reply_code == 406


def test_auto_delete_exchange_goes_with_its_last_binding(ch, unique):
    ch.exchange_declare(unique, 'direct', auto_delete=True)
    ch.queue_declare(unique, exclusive=True)
    ch.queue_bind(unique, unique, 'k')
    ch.queue_unbind(unique, unique, 'k')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.exchange_declare(unique, 'direct', passive=True)
    assert info.value.reply_code == 404


def test_publish_to_a_missing_exchange_is_404(ch, unique):
    ch.basic_publish(unique, 'k', b'x')
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare('', exclusive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no exchange '{unique}' in vhost '/'"


def test_mandatory_unroutable_message_is_returned(ch, unique):
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m.reply_code, m.reply_text,
                                                                  m.routing_key, b)))
    ch.basic_publish('', unique, b'lost?', mandatory=True)
    ch.connection.process_data_events(0.3)
    assert returned == [(312, 'NO_ROUTE', unique, b'lost?')]
