"""x-queue-type: classic and quorum are accepted, anything else is refused."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from ..helpers import pika_connection


def test_quorum_is_accepted_and_implies_durable(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=False, arguments={'x-queue-type': 'quorum'})
        # Re-declared as Celery does (durable=True): the same queue.
        ch.queue_declare(unique, durable=True, arguments={'x-queue-type': 'quorum'})
        ch.queue_delete(unique)


def test_quorum_survives_a_restart(fresh_broker, unique):
    fresh_broker.start()
    with pika_connection(fresh_broker.url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=False, arguments={'x-queue-type': 'quorum'})
        ch.basic_publish('', unique, b'kept', pika.BasicProperties(delivery_mode=2))
        ch.queue_declare(unique, passive=True)
    assert fresh_broker.stop() == 0
    fresh_broker.start(port=fresh_broker.port)
    with pika_connection(fresh_broker.url) as conn:
        assert conn.channel().basic_get(unique, auto_ack=True)[2] == b'kept'


def test_global_prefetch_works_on_quorum_queues(amqp_url, unique):
    # RabbitMQ refuses global QoS on quorum queues; Leveret applies it.
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True, arguments={'x-queue-type': 'quorum'})
        for _ in range(5):
            ch.basic_publish('', unique, b'x')
        ch.basic_qos(prefetch_count=2, global_qos=True)
        got = []
        ch.basic_consume(unique, lambda c, m, p, b: got.append(m.delivery_tag))
        conn.process_data_events(0.3)
        assert len(got) == 2
        ch.basic_ack(got[-1], multiple=True)
        conn.process_data_events(0.3)
        assert len(got) == 4
        ch.queue_delete(unique)


@pytest.mark.parametrize('kind', ['stream', 'lazy-list'])
def test_unsupported_types_get_a_clear_406(amqp_url, unique, kind):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, durable=True,
                                         arguments={'x-queue-type': kind})
        assert info.value.reply_code == 406
        assert f"unsupported queue type '{kind}'" in info.value.reply_text
        assert 'classic and quorum' in info.value.reply_text
        assert conn.is_open


def test_quorum_queues_cannot_be_exclusive(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(unique, exclusive=True,
                                         arguments={'x-queue-type': 'quorum'})
        assert info.value.reply_code == 406


def test_transient_non_exclusive_queues_are_accepted(amqp_url, unique):
    # RabbitMQ 4.3 refuses these, which breaks older Celery and kombu.
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=False, exclusive=False, auto_delete=False)
        ch.queue_delete(unique)
