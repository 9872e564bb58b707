"""What the worker writes for a result (publish, content header, bodies) is
what pamqp writes for Celery's rpc:// result properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.client.worker import frames

from ..strategies import names, tags

ids = st.text(alphabet='0123456789abcdef-', min_size=1, max_size=64)


@given(channel=st.integers(min_value=1, max_value=65535), reply_to=names, correlation_id=ids,
       body=st.binary(max_size=20000), max_body_frame=st.integers(min_value=4088, max_value=9000))
@settings(max_examples=200)
def test_a_result_publish_is_pamqps(channel, reply_to, correlation_id, body, max_body_frame):
    properties = C.Basic.Properties(content_type='application/json', content_encoding='utf-8',
                                    headers={}, delivery_mode=1, priority=0,
                                    correlation_id=correlation_id)
    expected = b''.join([
        pframe.marshal(C.Basic.Publish(exchange='', routing_key=reply_to), channel),
        pframe.marshal(pheader.ContentHeader(0, len(body), properties), channel),
        *(pframe.marshal(pbody.ContentBody(body[i:i + max_body_frame]), channel)
          for i in range(0, len(body), max_body_frame))])
    assert frames.publish(channel, '', reply_to, frames.result_properties(correlation_id),
                          frames.RESULT_FLAGS, body, max_body_frame) == expected


@given(channel=st.integers(min_value=1, max_value=65535), tag=tags, flag=st.booleans())
def test_acks_and_rejects_are_pamqps(channel, tag, flag):
    assert frames.ack(channel, tag, flag) == pframe.marshal(
        C.Basic.Ack(delivery_tag=tag, multiple=flag), channel)
    assert frames.reject(channel, tag, flag) == pframe.marshal(
        C.Basic.Reject(delivery_tag=tag, requeue=flag), channel)
