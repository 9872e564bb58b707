"""Message content: large bodies split by frame_max, empty bodies, properties relayed."""

from __future__ import annotations

import asyncio
import datetime

import aio_pika
import pika
from pamqp import commands as C
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ..rawamqp import RawClient


def test_large_body_goes_out_in_frame_max_pieces(broker, unique):
    body = bytes(range(256)) * 1200          # 307200 bytes, like Celery's 300 KB args
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        client.publish(1, '', unique, body)
        client.send_method(1, C.Basic.Get(queue=unique, no_ack=True))
        client.expect(C.Basic.GetOk, 1)
        header = client.expect(ContentHeader, 1)
        assert header.body_size == len(body)
        parts = []
        while sum(map(len, parts)) < len(body):
            parts.append(client.expect(ContentBody, 1).value)
        assert [len(p) for p in parts] == [131064, 131064, 307200 - 2 * 131064]
        assert b''.join(parts) == body


def test_twenty_megabyte_message_round_trip(amqp_url, unique):
    body = b'0123456789abcdef' * (20 * 1024 * 1024 // 16)

    async def main():
        conn = await aio_pika.connect(amqp_url)
        ch = await conn.channel()
        queue = await ch.declare_queue(unique, auto_delete=True)
        await ch.default_exchange.publish(aio_pika.Message(body), routing_key=unique)
        message = await queue.get(timeout=30)
        assert message.body == body
        await message.ack()
        await conn.close()

    asyncio.run(main())


def test_empty_body_is_delivered(amqp_url, unique):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish('', unique, b'')
        method, props, body = ch.basic_get(unique, auto_ack=True)
        assert body == b'' and method is not None
        ch.queue_delete(unique)


def test_properties_are_relayed_unchanged(amqp_url, unique):
    props = pika.BasicProperties(
        content_type='application/json', content_encoding='utf-8',
        headers={'a': 1, 'b': 'two', 'c': None, 'd': [1, 'x'], 'e': {'f': True},
                 'big': 2**40},
        delivery_mode=2, priority=7, correlation_id='cid', reply_to='rq',
        expiration='60000', message_id='mid',
        timestamp=int(datetime.datetime(2026, 1, 2).timestamp()), type='t', app_id='app')
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish('', unique, b'{}', props)
        _, got, _ = ch.basic_get(unique, auto_ack=True)
        for name in ('content_type', 'content_encoding', 'headers', 'delivery_mode', 'priority',
                     'correlation_id', 'reply_to', 'expiration', 'message_id', 'timestamp',
                     'type', 'app_id'):
            assert getattr(got, name) == getattr(props, name), name
        ch.queue_delete(unique)


def test_user_id_must_match_the_login(broker, unique):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.publish(1, '', unique, b'x', C.Basic.Properties(user_id='mallory'))
        close = client.expect(C.Channel.Close, 1)
        assert close.reply_code == 406
        assert close.reply_text == (
            "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated "
            "user was 'guest'")
