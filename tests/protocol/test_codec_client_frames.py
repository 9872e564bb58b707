"""The frames a client sends (the bundled worker's rejects and publishes) are
pamqp's bytes; a consumer's ack is ``ack_frame``, checked with the confirms."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.protocol import codec

from .. import strategies
from ..strategies import names, short_texts, tags

channels = st.integers(min_value=1, max_value=65535)
property_sets = strategies.property_sets(
    st.one_of(st.integers(min_value=-2**31, max_value=2**31 - 1), short_texts, st.none()),
    max_headers=3)


@given(channel=channels, tag=tags, requeue=st.booleans())
def test_reject_frame_matches_pamqp(channel, tag, requeue):
    assert codec.reject_frame(channel, tag, requeue) == pframe.marshal(
        C.Basic.Reject(delivery_tag=tag, requeue=requeue), channel)


@given(channel=channels, exchange=names, routing_key=names, mandatory=st.booleans(),
       immediate=st.booleans())
def test_publish_frame_matches_pamqp(channel, exchange, routing_key, mandatory, immediate):
    expected = pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                              mandatory=mandatory, immediate=immediate), channel)
    assert codec.publish_frame(channel, exchange, routing_key, mandatory, immediate) == expected
    decoded = codec.decode_publish(expected[7:-1])
    assert (decoded.exchange, decoded.routing_key) == (exchange, routing_key)


@given(channel=channels, exchange=names, routing_key=names, props=property_sets,
       body=st.binary(max_size=3000), frame_max=st.integers(min_value=4096, max_value=8192))
@settings(max_examples=200)
def test_a_publish_with_its_content_matches_pamqp(channel, exchange, routing_key, props, body,
                                                  frame_max):
    header = pheader.ContentHeader(0, len(body), C.Basic.Properties(**props))
    pamqp_header = pframe.marshal(header, channel)[7:-1]
    flags, property_list = int.from_bytes(pamqp_header[12:14], 'big'), pamqp_header[14:]
    step = frame_max - 8
    expected = b''.join([
        pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key), channel),
        pframe.marshal(header, channel),
        *(pframe.marshal(pbody.ContentBody(body[i:i + step]), channel)
          for i in range(0, len(body), step))])
    got = b''.join([codec.publish_frame(channel, exchange, routing_key),
                    *codec.content_frames(channel, codec.content_header(
                        len(body), flags, property_list), body, frame_max)])
    assert got == expected
