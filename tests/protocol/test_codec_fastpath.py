"""The hand-written hot-path codec agrees byte for byte with pamqp."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.protocol import codec, properties

from .. import strategies
from ..strategies import names, short_texts, tags

channels = st.integers(min_value=1, max_value=65535)

table_values = st.one_of(st.integers(min_value=-2**31, max_value=2**31 - 1), short_texts,
                         st.booleans(), st.none())
property_sets = strategies.property_sets(table_values, max_headers=4)


def payload_of(frame: bytes) -> bytes:
    return frame[7:-1]


@given(exchange=names, routing_key=names, mandatory=st.booleans(), immediate=st.booleans())
def test_decode_publish_matches_pamqp(exchange, routing_key, mandatory, immediate):
    wire = pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                          mandatory=mandatory, immediate=immediate), 1)
    decoded = codec.decode_publish(payload_of(wire))
    assert (decoded.exchange, decoded.routing_key, decoded.mandatory, decoded.immediate) == (
        exchange, routing_key, mandatory, immediate)


class Delivered:
    """The fields :func:`codec.deliver` reads of the broker's messages."""

    def __init__(self, header: bytes, body: bytes, redelivered: bool,
                 exchange_and_key: bytes) -> None:
        self.header = header
        self.body = body
        self.redelivered = redelivered
        self.exchange_and_key = exchange_and_key


@given(channel=channels, consumer_tag=names, tag=tags, redelivered=st.booleans(),
       exchange=names, routing_key=names, props=property_sets,
       body=st.one_of(st.binary(max_size=40), st.binary(min_size=4000, max_size=9000)),
       frame_max=st.integers(min_value=4096, max_value=8192))
@settings(max_examples=200)
def test_deliver_matches_pamqp(channel, consumer_tag, tag, redelivered, exchange, routing_key,
                               props, body, frame_max):
    """basic.deliver and its content frames, as the broker writes every delivery."""
    content_header = pheader.ContentHeader(0, len(body), C.Basic.Properties(**props))
    expected = [pframe.marshal(C.Basic.Deliver(consumer_tag=consumer_tag, delivery_tag=tag,
                                               redelivered=redelivered, exchange=exchange,
                                               routing_key=routing_key), channel),
                pframe.marshal(content_header, channel)]
    step = frame_max - 8
    for i in range(0, len(body), step):
        expected.append(pframe.marshal(pbody.ContentBody(body[i:i + step]), channel))
    message = Delivered(payload_of(pframe.marshal(content_header, channel)), body, redelivered,
                        codec.shortstr(exchange) + codec.shortstr(routing_key))
    out: list[bytes | memoryview] = [b'before']
    size = codec.deliver(out, channel, codec.shortstr(consumer_tag), tag, message, frame_max)
    assert size == len(body)
    assert out[0] == b'before'      # appended to what the connection already holds
    assert b''.join(out[1:]) == b''.join(expected)


@pytest.mark.parametrize('extra', [-1, 0, 1, 4096 - 8, 4096 - 7])
def test_deliver_splits_bodies_at_the_frame_max(extra):
    """Bodies just under, at and over one frame's room (frame_max - 8)."""
    body = bytes(range(256)) * 40
    body = body[:4096 - 8 + extra]
    test_deliver_matches_pamqp.hypothesis.inner_test(
        1, 'ctag', 5, False, 'ex', 'rk', {'delivery_mode': 2}, body, 4096)


@given(channel=channels, tag=tags, redelivered=st.booleans(), exchange=names,
       routing_key=names, count=st.integers(min_value=0, max_value=2**32 - 1))
def test_get_ok_frame_matches_pamqp(channel, tag, redelivered, exchange, routing_key, count):
    method = C.Basic.GetOk(delivery_tag=tag, redelivered=redelivered, exchange=exchange,
                           routing_key=routing_key, message_count=count)
    got = codec.get_ok_frame(channel, tag, redelivered,
                             codec.shortstr(exchange) + codec.shortstr(routing_key), count)
    assert got == pframe.marshal(method, channel)
    _, _, decoded = pframe.unmarshal(got)
    assert decoded.delivery_tag == tag and decoded.message_count == count


@given(channel=channels, tag=tags, multiple=st.booleans())
def test_confirm_frames_match_pamqp(channel, tag, multiple):
    assert codec.ack_frame(channel, tag, multiple) == pframe.marshal(
        C.Basic.Ack(delivery_tag=tag, multiple=multiple), channel)
    assert codec.nack_frame(channel, tag, multiple) == pframe.marshal(
        C.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=False), channel)


@given(tag=tags, multiple=st.booleans(), requeue=st.booleans())
def test_decode_ack_nack_reject_match_pamqp(tag, multiple, requeue):
    ack = pframe.marshal(C.Basic.Ack(delivery_tag=tag, multiple=multiple), 1)
    assert codec.decode_ack(payload_of(ack)) == (tag, multiple)
    nack = pframe.marshal(C.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=requeue), 1)
    assert codec.decode_nack(payload_of(nack)) == (tag, multiple, requeue)
    reject = pframe.marshal(C.Basic.Reject(delivery_tag=tag, requeue=requeue), 1)
    assert codec.decode_reject(payload_of(reject)) == (tag, requeue)


@given(channel=channels, props=property_sets, body=st.binary(max_size=3000),
       frame_max=st.integers(min_value=4096, max_value=8192))
@settings(max_examples=200)
def test_content_frames_match_pamqp(channel, props, body, frame_max):
    header = pheader.ContentHeader(0, len(body), C.Basic.Properties(**props))
    header_payload = payload_of(pframe.marshal(header, channel))
    expected = [pframe.marshal(header, channel)]
    step = frame_max - 8
    for i in range(0, len(body), step):
        expected.append(pframe.marshal(pbody.ContentBody(body[i:i + step]), channel))
    got = b''.join(codec.content_frames(channel, header_payload, body, frame_max))
    assert got == b''.join(expected)
    assert codec.decode_content_header(header_payload) == (60, 0, len(body))


@given(props=property_sets)
@settings(max_examples=300)
def test_property_scan_matches_pamqp(props):
    header = pheader.ContentHeader(0, 5, C.Basic.Properties(**props))
    payload = payload_of(pframe.marshal(header, 1))
    delivery_mode, priority, expiration, user_id = properties.scan(payload)
    decoded = properties.decode(payload)
    assert delivery_mode == (decoded.delivery_mode or 0)
    assert priority == (decoded.priority or 0)
    assert expiration == decoded.expiration
    assert user_id == decoded.user_id


def test_return_frame_matches_pamqp():
    method = C.Basic.Return(reply_code=312, reply_text='NO_ROUTE', exchange='x',
                            routing_key='rk')
    assert codec.return_frame(3, 312, 'NO_ROUTE', b'\x01x\x02rk') == pframe.marshal(method, 3)


@given(exchange=names, routing_key=names)
def test_decoded_publish_keeps_the_raw_exchange_and_key(exchange, routing_key):
    wire = pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key), 1)
    decoded = codec.decode_publish(payload_of(wire))
    assert decoded.exchange_and_key == codec.shortstr(exchange) + codec.shortstr(routing_key)
