"""The consumer connection's reading without a socket: frames in, deliveries
out, however the bytes are split; content out of order closes the connection
with RabbitMQ's 505 texts (the protocol's content assembler)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.client.worker.connection import ConnectionClosed, ConsumerConnection, Params


class Transport:
    def __init__(self) -> None:
        self.written = b''
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


def deliver(tag: int, body: bytes, frame_max: int = 4096) -> bytes:
    step = frame_max - 8
    return b''.join([
        pframe.marshal(C.Basic.Deliver(consumer_tag='c', delivery_tag=tag, exchange='x',
                                       routing_key='q'), 1),
        pframe.marshal(pheader.ContentHeader(0, len(body), C.Basic.Properties(
            headers={'task': 't', 'n': tag}, reply_to='r')), 1),
        *(pframe.marshal(pbody.ContentBody(body[i:i + step]), 1)
          for i in range(0, len(body), step))])


def feed(chunks: list[bytes]) -> tuple[list[Any], list[BaseException], Transport]:
    async def main() -> tuple[list[Any], list[BaseException], Transport]:
        deliveries: list[Any] = []
        lost: list[BaseException] = []
        connection = ConsumerConnection(Params('h', 1, 'guest', 'guest', '/'),
                                        deliveries.append, lost.append)
        transport = Transport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection._is_open = True  # as after the handshake
        for chunk in chunks:
            connection.data_received(chunk)
        connection.connection_lost(None)
        return deliveries, lost, transport
    return asyncio.run(main())


@given(bodies=st.lists(st.binary(max_size=9000), min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=0, max_value=40000), max_size=12))
@settings(max_examples=100, deadline=None)
def test_deliveries_are_read_whole_however_the_bytes_are_split(bodies, cuts):
    data = b''.join(deliver(tag, body) for tag, body in enumerate(bodies, 1))
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    deliveries, lost, _ = feed(chunks)
    assert [(d.delivery_tag, d.body, d.body_size) for d in deliveries] == \
        [(tag, body, len(body)) for tag, body in enumerate(bodies, 1)]
    assert [d.properties.headers for d in deliveries] == \
        [{'task': 't', 'n': tag} for tag in range(1, len(bodies) + 1)]
    assert [e.code for e in lost] == [0]  # only the drop at the end: no protocol error


def closed_with(data: bytes) -> tuple[int, str]:
    deliveries, lost, transport = feed([data])
    assert deliveries == [] and transport.closed
    assert isinstance(lost[0], ConnectionClosed)
    frames, written = [], transport.written[8:]  # after the protocol header
    while written:
        used, _, frame = pframe.unmarshal(written)
        frames.append(frame)
        written = written[used:]
    [close] = [f for f in frames if isinstance(f, C.Connection.Close)]
    assert close.reply_code == lost[0].code
    return close.reply_code, close.reply_text


def test_a_method_inside_a_content_is_a_505_as_rabbitmq_says_it():
    body_frame = pframe.marshal(pbody.ContentBody(b'body'), 1)
    method_and_header = deliver(1, b'body')[:-len(body_frame)]
    assert closed_with(method_and_header + pframe.marshal(C.Basic.QosOk(), 1)) == (
        505, 'UNEXPECTED_FRAME - expected content body, got non content body frame instead')


def test_a_deliver_before_the_previous_content_is_a_505():
    method = pframe.marshal(C.Basic.Deliver(consumer_tag='c', delivery_tag=1, exchange='',
                                            routing_key='q'), 1)
    code, text = closed_with(method + method)
    assert code == 505
    assert text == 'UNEXPECTED_FRAME - expected content header for class 60, ' \
        'got non content header frame instead'


def test_a_body_without_a_delivery_is_a_505():
    assert closed_with(pframe.marshal(pbody.ContentBody(b'x'), 1)) == (
        505, 'UNEXPECTED_FRAME - expected method frame, got non method frame instead')


def test_a_body_longer_than_announced_is_a_505():
    body_frame = pframe.marshal(pbody.ContentBody(b'four'), 1)
    data = deliver(1, b'four')
    assert data.endswith(body_frame)
    code, text = closed_with(data[:-len(body_frame)]
                             + pframe.marshal(pbody.ContentBody(b'four!'), 1))
    assert code == 505 and 'more than the content header announced (4)' in text
