"""The worker's consumer connection: against the real broker (consume, qos,
acks, cancel, a broker restart), and against a fake server that sends what
a broker should not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pika
import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.client.worker.connection import ConnectionClosed, ConsumerCancelled, ConsumerConnection
from leveret.client.worker.delivery import Delivery
from leveret.protocol import FrameReader, methods
from leveret.protocol.constants import FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER

from ..helpers import queue_depth

TIMEOUT = 10


class Consumer:
    """Collects what a ConsumerConnection hands over."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.lost: list[BaseException] = []
        self._changed = asyncio.Event()

    def on_delivery(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._changed.set()

    def on_lost(self, exc: BaseException) -> None:
        self.lost.append(exc)
        self._changed.set()

    async def wait_for(self, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    async def open(self, url: str, **kwargs: Any) -> ConsumerConnection:
        return await ConsumerConnection.open(url, self.on_delivery, self.on_lost, **kwargs)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def publish(url: str, queue: str, bodies: list[bytes], **props: Any) -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True)
        for body in bodies:
            channel.basic_publish('', queue, body, pika.BasicProperties(**props))


# --- against the broker ---------------------------------------------------------
def test_deliveries_come_whole_and_acks_settle_them(broker, unique):
    big = bytes(range(256)) * 1200  # several body frames
    headers = {'task': 'proj.add', 'id': 'abc', 'timelimit': [None, 30], 'retries': 1}
    publish(broker.url, unique, [b'[[1, 2], {}, {}]', big, b''], content_type='application/json',
            content_encoding='utf-8', headers=headers, delivery_mode=2, priority=3,
            correlation_id='abc', reply_to='replies')

    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        await connection.qos(10)
        await connection.consume(unique, 'ctag')
        await consumer.wait_for(lambda: len(consumer.deliveries) == 3)
        first, second, third = consumer.deliveries
        assert (first.body, second.body, third.body) == (b'[[1, 2], {}, {}]', big, b'')
        assert (first.consumer_tag, first.exchange, first.routing_key, first.redelivered) == \
            ('ctag', '', unique, False)
        props = first.properties
        assert props is not None
        assert (props.content_type, props.content_encoding, props.headers, props.delivery_mode,
                props.priority, props.correlation_id, props.reply_to) == (
            'application/json', 'utf-8', headers, 2, 3, 'abc', 'replies')
        connection.ack(second.delivery_tag, multiple=True)
        connection.ack(third.delivery_tag)
        await connection.flush()
        await connection.close()
        assert consumer.lost == []

    run(scenario())
    assert queue_depth(broker.url, unique) == 0


def test_prefetch_limits_deliveries_and_rejects_requeue(broker, unique):
    publish(broker.url, unique, [b'%d' % i for i in range(5)])

    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        await connection.qos(2)
        await connection.consume(unique, 'ctag')
        await consumer.wait_for(lambda: len(consumer.deliveries) == 2)
        await connection.qos(3)  # a running consumer gets the new limit
        await consumer.wait_for(lambda: len(consumer.deliveries) == 3)
        assert [d.body for d in consumer.deliveries] == [b'0', b'1', b'2']
        connection.reject(consumer.deliveries[0].delivery_tag, requeue=True)
        await consumer.wait_for(lambda: len(consumer.deliveries) == 4)
        assert consumer.deliveries[3].body == b'0' and consumer.deliveries[3].redelivered
        await connection.close()  # nothing acked: all back in the queue

    run(scenario())
    assert queue_depth(broker.url, unique) == 5


def test_after_cancel_nothing_more_is_delivered(broker, unique):
    publish(broker.url, unique, [b'one'])

    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        await connection.consume(unique, 'ctag')
        await consumer.wait_for(lambda: len(consumer.deliveries) == 1)
        connection.ack(consumer.deliveries[0].delivery_tag)
        await connection.cancel('ctag')
        await asyncio.to_thread(publish, broker.url, unique, [b'two'])
        assert await asyncio.to_thread(queue_depth, broker.url, unique) == 1
        await connection.close()

    run(scenario())
    assert queue_depth(broker.url, unique) == 1


def test_a_refused_ack_ends_the_connection(broker, unique):
    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        connection.ack(999)  # never delivered: PRECONDITION_FAILED
        await consumer.wait_for(lambda: bool(consumer.lost))
        assert isinstance(consumer.lost[0], ConnectionClosed)
        assert consumer.lost[0].code == 406
        assert connection.is_closed

    run(scenario())


def test_a_deleted_queue_cancels_the_consumer(broker, unique):
    publish(broker.url, unique, [])

    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        await connection.consume(unique, 'ctag')
        with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
            conn.channel().queue_delete(unique)
        await consumer.wait_for(lambda: bool(consumer.lost))
        assert isinstance(consumer.lost[0], ConsumerCancelled)
        assert connection.is_closed

    run(scenario())


def test_wrong_credentials_are_refused(broker):
    async def scenario() -> None:
        with pytest.raises(ConnectionError):
            await Consumer().open(broker.url.replace('guest:guest', 'guest:wrong'))

    run(scenario())


def test_a_broker_restart_is_reported_and_a_new_connection_works(fresh_broker, unique):
    broker = fresh_broker.start()
    port = broker.port
    publish(broker.url, unique, [b'before'], delivery_mode=2)

    async def scenario() -> None:
        consumer = Consumer()
        connection = await consumer.open(broker.url)
        await connection.consume(unique, 'ctag')
        await consumer.wait_for(lambda: len(consumer.deliveries) == 1)
        assert await asyncio.to_thread(broker.stop) == 0
        await consumer.wait_for(lambda: bool(consumer.lost))
        assert isinstance(consumer.lost[0], ConnectionError)
        assert connection.is_closed
        connection.ack(consumer.deliveries[0].delivery_tag)  # dropped, no error
        await asyncio.to_thread(broker.start, port)
        again = Consumer()
        connection = await again.open(broker.url)
        await connection.consume(unique, 'ctag')
        await again.wait_for(lambda: len(again.deliveries) == 1)
        assert again.deliveries[0].body == b'before' and again.deliveries[0].redelivered
        connection.ack(again.deliveries[0].delivery_tag)
        await connection.close()
        assert consumer.lost[1:] == [] and again.lost == []

    run(scenario())


# --- against a fake server --------------------------------------------------------
class FakeServer:
    """Accepts one connection, runs the handshake, then ``script``."""

    def __init__(self, script: Callable[[FakeServer], Awaitable[None]], heartbeat: int = 0,
                 handshake: bool = True) -> None:
        self.script = script
        self.heartbeat = heartbeat
        self.handshake = handshake
        self.frames = FrameReader(1 << 20)
        self.received: list[tuple[int, int, Any]] = []
        self.done = asyncio.Event()
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, '127.0.0.1', 0)
        port = self.server.sockets[0].getsockname()[1]
        return f'amqp://guest:guest@127.0.0.1:{port}/'

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        try:
            assert await reader.readexactly(8) == PROTOCOL_HEADER
            if self.handshake:
                await self._handshake()
            await self.script(self)
        finally:
            self.done.set()

    async def _handshake(self) -> None:
        self.send(0, C.Connection.Start(server_properties={'product': 'fake'},
                                        mechanisms='PLAIN', locales='en_US'))
        await self.expect(C.Connection.StartOk)
        self.send(0, C.Connection.Tune(channel_max=16, frame_max=131072,
                                       heartbeat=self.heartbeat))
        await self.expect(C.Connection.TuneOk)
        await self.expect(C.Connection.Open)
        self.send(0, C.Connection.OpenOk())
        await self.expect(C.Channel.Open)
        self.send(1, C.Channel.OpenOk())

    def send(self, channel: int, frame: Any) -> None:
        self.writer.write(pframe.marshal(frame, channel))

    async def next_frame(self) -> tuple[int, int, Any]:
        while not self.received:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError
            for kind, channel, payload in self.frames.feed(data):
                decoded = methods.decode_method(payload) if kind == FRAME_METHOD else payload
                self.received.append((kind, channel, decoded))
        return self.received.pop(0)

    async def expect(self, cls: type) -> Any:
        kind, _, frame = await self.next_frame()
        while kind == FRAME_HEARTBEAT:
            kind, _, frame = await self.next_frame()
        assert isinstance(frame, cls), frame
        return frame

    async def close_from_client(self) -> Any:
        """The connection.close the client sends, if any (None: the socket just closed)."""
        try:
            while True:
                kind, _, frame = await self.next_frame()
                if isinstance(frame, C.Connection.Close):
                    return frame
        except (EOFError, ConnectionError):
            return None


def with_fake_server(script: Callable[[FakeServer], Awaitable[None]],
                     check: Callable[[Consumer, FakeServer], Awaitable[None]],
                     **server: Any) -> None:
    async def scenario() -> None:
        fake = FakeServer(script, **server)
        url = await fake.start()
        consumer = Consumer()
        try:
            await check(consumer, await consumer.open(url, timeout=5))
        finally:
            fake.server.close()
        await fake.done.wait()
    run(scenario())


def deliver_frames(tag: int, body: bytes) -> bytes:
    return b''.join([
        pframe.marshal(C.Basic.Deliver(consumer_tag='c', delivery_tag=tag, exchange='',
                                       routing_key='q'), 1),
        pframe.marshal(pheader.ContentHeader(0, len(body), C.Basic.Properties(
            headers={'task': 't'}, reply_to='r')), 1),
        pframe.marshal(pbody.ContentBody(body), 1)])


def test_a_delivery_trickling_in_byte_by_byte_is_read(unique):
    async def script(fake: FakeServer) -> None:
        for byte in deliver_frames(7, b'hello'):
            fake.writer.write(bytes((byte,)))
            await fake.writer.drain()
        await fake.close_from_client()

    async def check(consumer: Consumer, connection: ConsumerConnection) -> None:
        await consumer.wait_for(lambda: len(consumer.deliveries) == 1)
        delivery = consumer.deliveries[0]
        assert (delivery.delivery_tag, delivery.body) == (7, b'hello')
        assert delivery.properties is not None and delivery.properties.reply_to == 'r'
        await connection.close(timeout=1)

    with_fake_server(script, check)


@pytest.mark.parametrize('garbage,code', [
    (b'\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x50\xff', 501),   # wrong frame end
    (b'\x09\x00\x01\x00\x00\x00\x00\xce', 501),                   # unknown frame type
    (pframe.marshal(pbody.ContentBody(b'x'), 1), 505),             # a body out of nowhere
    (pframe.marshal(C.Basic.Deliver(consumer_tag='c', delivery_tag=1, exchange='',
                                     routing_key='q'), 1)
     + pframe.marshal(C.Basic.QosOk(), 1), 505),                   # a method inside a content
    (pframe.marshal(C.Basic.Deliver(consumer_tag='c', delivery_tag=1, exchange='',
                                     routing_key='q'), 1)
     + b'\x02\x00\x01\x00\x00\x00\x0a' + b'\x00\x3c\x00\x00' + b'\x00' * 6
     + b'\xce', 501),                                              # a header cut short
    (pframe.marshal(C.Basic.QosOk(), 1) * 2, 505),                 # a reply nobody waits for
    (pframe.marshal(C.Channel.OpenOk(), 2), 505),                  # another channel
])
def test_malformed_input_closes_the_connection_with_a_reply_code(garbage, code):
    closes: list[Any] = []

    async def script(fake: FakeServer) -> None:
        await fake.expect(C.Basic.Qos)  # the connection is open by then
        fake.writer.write(garbage)
        closes.append(await fake.close_from_client())

    async def check(consumer: Consumer, connection: ConsumerConnection) -> None:
        connection.qos(1)
        await consumer.wait_for(lambda: bool(consumer.lost))
        assert isinstance(consumer.lost[0], ConnectionClosed)
        assert consumer.lost[0].code == code
        assert consumer.deliveries == []

    with_fake_server(script, check)
    assert closes and closes[0] is not None and closes[0].reply_code == code


def test_a_message_whose_properties_cannot_be_read_is_rejected():
    rejects: list[Any] = []
    bad_header = (b'\x00\x3c\x00\x00' + (3).to_bytes(8, 'big') + b'\x20\x00'
                  + b'\x00\x00\x00\x10' + b'\x01k\x53\x00\x00\x00\xff')  # a string past the end

    async def script(fake: FakeServer) -> None:
        fake.writer.write(pframe.marshal(C.Basic.Deliver(
            consumer_tag='c', delivery_tag=1, exchange='', routing_key='q'), 1))
        fake.writer.write(b'\x02\x00\x01' + len(bad_header).to_bytes(4, 'big') + bad_header
                          + b'\xce')
        fake.writer.write(pframe.marshal(pbody.ContentBody(b'bad'), 1))
        fake.writer.write(deliver_frames(2, b'good'))
        rejects.append(await fake.expect(C.Basic.Reject))
        await fake.close_from_client()

    async def check(consumer: Consumer, connection: ConsumerConnection) -> None:
        await consumer.wait_for(lambda: len(consumer.deliveries) == 1)
        assert consumer.deliveries[0].body == b'good'
        await connection.flush()
        await connection.close(timeout=1)
        assert consumer.lost == []

    with_fake_server(script, check)
    assert [(r.delivery_tag, r.requeue) for r in rejects] == [(1, False)]


def test_a_connection_close_in_the_handshake_fails_the_open():
    async def scenario() -> None:
        async def script(fake: FakeServer) -> None:
            fake.send(0, C.Connection.Start(server_properties={}, mechanisms='PLAIN',
                                            locales='en_US'))
            await fake.expect(C.Connection.StartOk)
            fake.send(0, C.Connection.Close(reply_code=530, reply_text='NOT_ALLOWED - vhost',
                                            class_id=0, method_id=0))
            await fake.expect(C.Connection.CloseOk)

        fake = FakeServer(script, handshake=False)
        url = await fake.start()
        with pytest.raises(ConnectionClosed) as raised:
            await Consumer().open(url, timeout=5)
        assert raised.value.code == 530
        await fake.done.wait()
        fake.server.close()

    run(scenario())


def test_a_server_that_is_not_amqp_fails_the_open():
    async def scenario() -> None:
        async def script(fake: FakeServer) -> None:
            fake.writer.write(b'HTTP/1.1 400 Bad Request\r\n\r\n')
            await fake.close_from_client()

        fake = FakeServer(script, handshake=False)
        url = await fake.start()
        with pytest.raises(ConnectionError):
            await Consumer().open(url, timeout=5)
        await fake.done.wait()
        fake.server.close()

    run(scenario())


def test_heartbeats_go_out_and_a_silent_broker_is_given_up():
    seen: list[int] = []

    async def script(fake: FakeServer) -> None:
        try:
            while True:
                kind, _, _ = await fake.next_frame()
                seen.append(kind)
        except (EOFError, ConnectionError):
            pass

    async def check(consumer: Consumer, connection: ConsumerConnection) -> None:
        assert connection.heartbeat == 1
        await consumer.wait_for(lambda: bool(consumer.lost))
        assert 'heartbeat' in str(consumer.lost[0])

    with_fake_server(script, check, heartbeat=1)
    assert FRAME_HEARTBEAT in seen
