"""The worker's delivery decoding agrees with pamqp, and refuses what is malformed."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.client.worker.delivery import decode_content_header, decode_deliver

from .. import strategies
from ..strategies import names, short_texts, tags, timestamps

table_values = st.recursive(
    st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), short_texts, st.booleans(),
              st.none(), st.floats(min_value=-2.0**100, max_value=2.0**100, width=32),
              st.binary(max_size=10).map(bytearray),
              timestamps),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3)),
    max_leaves=6)
property_sets = strategies.property_sets(table_values, max_headers=6)


def payload_of(frame: bytes) -> bytes:
    return frame[7:-1]


@given(consumer_tag=names, tag=tags, redelivered=st.booleans(), exchange=names,
       routing_key=names)
def test_deliver_matches_pamqp(consumer_tag, tag, redelivered, exchange, routing_key):
    wire = pframe.marshal(C.Basic.Deliver(consumer_tag=consumer_tag, delivery_tag=tag,
                                          redelivered=redelivered, exchange=exchange,
                                          routing_key=routing_key), 1)
    delivery = decode_deliver(payload_of(wire))
    assert (delivery.consumer_tag, delivery.delivery_tag, delivery.redelivered,
            delivery.exchange, delivery.routing_key) == (consumer_tag, tag, redelivered,
                                                         exchange, routing_key)


@given(props=property_sets, size=st.integers(min_value=0, max_value=2**40))
@settings(max_examples=300)
def test_content_header_matches_pamqp(props, size):
    header = pheader.ContentHeader(0, size, C.Basic.Properties(**props))
    payload = payload_of(pframe.marshal(header, 1))
    expected = pheader.ContentHeader()
    expected.unmarshal(payload)
    body_size, decoded = decode_content_header(payload)
    assert body_size == size
    for name in C.Basic.Properties.__slots__:
        if name == 'cluster_id':  # pamqp reads an absent one as ''
            continue
        assert getattr(decoded, name) == getattr(expected.properties, name), name


def test_a_celery_task_header_is_read_whole():
    headers = {'lang': 'py', 'task': 'proj.add', 'id': 'abc', 'eta': None,
               'timelimit': [None, 30], 'retries': 2, 'ignore_result': False, 'stamps': {}}
    props = C.Basic.Properties(content_type='application/json', content_encoding='utf-8',
                               headers=headers, delivery_mode=2, priority=0,
                               correlation_id='abc', reply_to='reply.q')
    payload = payload_of(pframe.marshal(pheader.ContentHeader(0, 10, props), 1))
    size, decoded = decode_content_header(payload)
    assert size == 10
    assert decoded.headers == headers
    assert (decoded.reply_to, decoded.correlation_id, decoded.delivery_mode) == \
        ('reply.q', 'abc', 2)


def test_truncated_input_raises():
    deliver = payload_of(pframe.marshal(C.Basic.Deliver(
        consumer_tag='ctag', delivery_tag=1, exchange='ex', routing_key='rk'), 1))
    for cut in (5, 10, len(deliver) - 1):
        with pytest.raises((IndexError, struct.error, ValueError)):
            decode_deliver(deliver[:cut])
    with pytest.raises(IndexError):
        decode_deliver(deliver + b'x')
    props = C.Basic.Properties(content_type='application/json', headers={'a': 'b' * 40},
                               reply_to='r')
    header = payload_of(pframe.marshal(pheader.ContentHeader(0, 1, props), 1))
    for cut in (10, 20, 40, len(header) - 1):
        with pytest.raises((IndexError, struct.error, ValueError)):
            decode_content_header(header[:cut])


def test_undecodable_text_raises():
    header = struct.pack('>HHQH', 60, 0, 0, 0x8000) + b'\x02\xff\xfe'
    with pytest.raises(ValueError):
        decode_content_header(header)
