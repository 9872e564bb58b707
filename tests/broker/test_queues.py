"""queue.declare, bind, purge and delete, seen from real clients."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import pika
import pika.exceptions
import pytest
from aio_pika.exceptions import ChannelClosed, ChannelNotFoundEntity
from pamqp import commands as C

from ..helpers import pika_connection
from ..rawamqp import RawClient


def test_server_named_queue_looks_like_rabbitmqs(amqp_url):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        name = ch.queue_declare('', exclusive=True).method.queue
        assert name.startswith('amq.gen-') and len(name) == len('amq.gen-') + 22


def test_passive_declare_reports_exact_message_and_consumer_counts(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, auto_delete=False)
        for i in range(5):
            ch.basic_publish('', unique, b'%d' % i)
        ch.basic_consume(unique, lambda *a: None, auto_ack=False)
        ch2 = conn.channel()
        ok = ch2.queue_declare(unique, passive=True).method
        # One consumer took all five (no prefetch limit): none left ready.
        assert (ok.message_count, ok.consumer_count) == (0, 1)
        ch.close()  # requeues the five
        ok = ch2.queue_declare(unique, passive=True).method
        assert (ok.message_count, ok.consumer_count) == (5, 0)
        ch2.queue_delete(unique)


def test_passive_declare_of_a_missing_queue_is_404(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, passive=True)
        assert info.value.reply_code == 404
        assert info.value.reply_text == f"NOT_FOUND - no queue '{unique}' in vhost '/'"


def test_inequivalent_redeclare_is_406_and_names_the_argument(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, durable=False)
        assert info.value.reply_code == 406
        assert "inequivalent arg 'durable'" in info.value.reply_text
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, durable=True, arguments={'x-queue-type': 'quorum'})
        assert info.value.reply_code == 406
        assert info.value.reply_text == (
            f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{unique}' in "
            f"vhost '/': received the value 'quorum' of type 'longstr' but current is none")
        ch = conn.channel()
        # An identical re-declare is fine, and so is an explicit 'classic' type.
        ch.queue_declare(unique, durable=True)
        ch.queue_declare(unique, durable=True, arguments={'x-queue-type': 'classic'})
        ch.queue_delete(unique)


def test_reserved_amq_prefix_is_403(amqp_url):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare('amq.mine')
        assert info.value.reply_code == 403


def test_exclusive_queue_is_locked_for_other_connections_and_dies_with_its_owner(
        amqp_url, unique):
    owner = pika_connection(amqp_url)
    owner.channel().queue_declare(unique, exclusive=True)
    with pika_connection(amqp_url) as other:
        for call in (lambda ch: ch.queue_declare(unique),
                     lambda ch: ch.queue_declare(unique, passive=True),
                     lambda ch: ch.basic_get(unique),
                     lambda ch: ch.queue_purge(unique)):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                call(other.channel())
            assert info.value.reply_code == 405
            assert 'RESOURCE_LOCKED' in info.value.reply_text
        owner.close()
        # Deleted the moment the owner is gone.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            other.channel().queue_declare(unique, passive=True)
        assert info.value.reply_code == 404


def test_exclusive_queue_is_deleted_when_the_owner_drops_tcp(amqp_url, unique):
    owner = pika_connection(amqp_url)
    owner.channel().queue_declare(unique, exclusive=True)
    owner._impl._transport._sock.close()  # no connection.close: a bare TCP drop
    with pika_connection(amqp_url) as other:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                other.channel().queue_declare(unique, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                assert exc.reply_code == 404
                break
            time.sleep(0.05)
        else:
            pytest.fail('exclusive queue outlived its connection')


def test_auto_delete_queue_waits_for_a_first_consumer(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, auto_delete=True)
        ch.basic_publish('', unique, b'kept')
        # Never consumed: it stays (Celery's rpc reply queues rely on this).
        assert ch.queue_declare(unique, passive=True).method.message_count == 1
        tag = ch.basic_consume(unique, lambda *a: None, auto_ack=True)
        conn.process_data_events(0.2)
        ch.basic_cancel(tag)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare(unique, passive=True)
        assert info.value.reply_code == 404


def test_purge_returns_the_count_and_empties_the_queue(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        for _ in range(7):
            ch.basic_publish('', unique, b'x')
        assert ch.queue_purge(unique).method.message_count == 7
        assert ch.queue_declare(unique, passive=True).method.message_count == 0
        ch.queue_delete(unique)


def test_delete_if_unused_and_if_empty(amqp_url, unique):
    with pika_connection(amqp_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish('', unique, b'x')
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_delete(unique, if_empty=True)
        assert info.value.reply_code == 406
        assert info.value.reply_text.endswith('is not empty')
        ch = conn.channel()
        ch.basic_consume(unique, lambda *a: None)
        other = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            other.queue_delete(unique, if_unused=True)
        assert info.value.reply_code == 406
        assert info.value.reply_text.endswith('in use')
        assert conn.channel().queue_delete(unique).method.message_count == 0


def test_deleting_a_consumed_queue_sends_basic_cancel_to_its_consumers(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.open_channel(2)
        client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
        client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c1'), C.Basic.ConsumeOk)
        client.send_method(2, C.Queue.Delete(queue=unique))
        cancel = client.expect(C.Basic.Cancel, 1)
        assert (cancel.consumer_tag, cancel.nowait) == ('c1', True)
        client.expect(C.Queue.DeleteOk, 2)


def test_no_basic_cancel_for_clients_without_the_capability(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake(capabilities={})
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique), C.Queue.DeclareOk)
        client.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c1'), C.Basic.ConsumeOk)
        client.rpc(1, C.Queue.Delete(queue=unique), C.Queue.DeleteOk)


def test_bind_to_a_missing_exchange_is_404(amqp_url, unique):
    async def main():
        conn = await aio_pika.connect(amqp_url)
        ch = await conn.channel()
        queue = await ch.declare_queue(unique, auto_delete=True)
        with pytest.raises((ChannelClosed, ChannelNotFoundEntity)) as info:
            await queue.bind('no-such-exchange-' + unique, 'rk')
        assert "no exchange 'no-such-exchange-" in str(info.value)
        await conn.close()

    asyncio.run(main())
