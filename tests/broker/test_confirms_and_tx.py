"""Publisher confirms and transactions."""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pika.exceptions
import pytest
from pamqp import commands as C
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ..rawamqp import RawClient


def test_every_publish_is_confirmed_in_order(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        for _ in range(100):
            client.publish(1, '', unique, b'x')
        confirmed = 0
        while confirmed < 100:
            ack = client.expect(C.Basic.Ack, 1)
            assert ack.delivery_tag > confirmed
            assert ack.multiple or ack.delivery_tag == confirmed + 1
            confirmed = ack.delivery_tag
        assert confirmed == 100


def test_unroutable_messages_are_acked_after_their_return(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        client.publish(1, '', unique, b'x', mandatory=True)
        returned = client.expect(C.Basic.Return, 1)
        assert returned.reply_code == 312
        client.expect(ContentHeader, 1)
        client.expect(ContentBody, 1)
        assert client.expect(C.Basic.Ack, 1).delivery_tag == 1


def test_aio_pika_publisher_confirms(amqp_url, unique):
    async def main():
        conn = await aio_pika.connect(amqp_url)
        ch = await conn.channel(publisher_confirms=True)
        queue = await ch.declare_queue(unique, auto_delete=True)
        results = await asyncio.gather(*(
            ch.default_exchange.publish(aio_pika.Message(b'%d' % i), routing_key=unique)
            for i in range(200)))
        assert len(results) == 200
        assert all(isinstance(r, C.Basic.Ack) for r in results)
        assert queue.declaration_result.message_count == 0
        declared = await ch.declare_queue(unique, passive=True)
        assert declared.declaration_result.message_count == 200
        await queue.delete(if_unused=False, if_empty=False)
        await conn.close()

    asyncio.run(main())


def test_overflowing_queue_nacks_in_confirm_mode(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True, arguments={
            'x-max-length': 1, 'x-overflow': 'reject-publish'}), C.Queue.DeclareOk)
        client.rpc(1, C.Confirm.Select(), C.Confirm.SelectOk)
        client.publish(1, '', unique, b'1')
        assert client.expect(C.Basic.Ack, 1).delivery_tag == 1
        client.publish(1, '', unique, b'2')
        assert client.expect(C.Basic.Nack, 1).delivery_tag == 2


def test_tx_commit_and_rollback(amqp_url, unique):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.tx_select()
        ch.basic_publish('', unique, b'rolled back')
        ch.tx_rollback()
        ch.basic_publish('', unique, b'committed')
        assert ch.queue_declare(unique, passive=True).method.message_count == 0
        ch.tx_commit()
        assert ch.queue_declare(unique, passive=True).method.message_count == 1
        method, _, body = ch.basic_get(unique)
        assert body == b'committed'
        ch.basic_ack(method.delivery_tag)
        ch.tx_rollback()      # the ack is undone: the message is still unacked
        ch.basic_ack(method.delivery_tag)
        ch.tx_commit()
        assert ch.queue_declare(unique, passive=True).method.message_count == 0
        ch.queue_delete(unique)


def test_tx_and_confirm_modes_exclude_each_other(amqp_url):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        ch = conn.channel()
        ch.tx_select()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.confirm_delivery()
        assert info.value.reply_code == 406
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.tx_commit()
        assert info.value.reply_code == 406
