"""The incremental frame reader: any split of the stream gives the same frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands as C
from pamqp import frame as pframe

from leveret.protocol import FrameReader
from leveret.protocol.errors import FrameError
from leveret.protocol.methods import decode_method, encode_method

STREAM = b''.join([
    pframe.marshal(C.Queue.Declare(queue='q', durable=True), 1),
    pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1),
    b'\x08\x00\x00\x00\x00\x00\x00\xce',
    pframe.marshal(C.Basic.Ack(delivery_tag=7), 2),
])


def frames_of(chunks: list[bytes]) -> list[tuple[int, int, bytes]]:
    reader = FrameReader(131072)
    out = []
    for chunk in chunks:
        out.extend(reader.feed(chunk))
    assert reader.buffered == 0
    return out


def test_whole_stream_gives_every_frame():
    frames = frames_of([STREAM])
    assert [(t, c) for t, c, _ in frames] == [(1, 1), (1, 1), (8, 0), (1, 2)]
    assert decode_method(frames[0][2]).queue == 'q'


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=10))
def test_any_split_gives_the_same_frames(cuts):
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert frames_of(chunks) == frames_of([STREAM])


def test_a_partial_frame_is_held_back():
    reader = FrameReader(131072)
    assert reader.feed(STREAM[:10]) == []
    assert reader.buffered == 10


def test_wrong_frame_end_is_a_frame_error():
    bad = bytearray(pframe.marshal(C.Basic.Ack(delivery_tag=1), 1))
    bad[-1] = 0x00
    with pytest.raises(FrameError) as info:
        FrameReader(131072).feed(bytes(bad))
    assert info.value.code == 501 and info.value.connection_level


def test_oversized_frame_is_refused_before_its_payload_arrives():
    header = b'\x03\x00\x01' + (200000).to_bytes(4, 'big')
    with pytest.raises(FrameError, match='larger than negotiated maximum'):
        FrameReader(131072).feed(header)


def test_unknown_frame_type_is_a_frame_error():
    with pytest.raises(FrameError, match='invalid frame type'):
        FrameReader(131072).feed(b'\x09\x00\x00\x00\x00\x00\x00\xce')


@pytest.mark.parametrize('method', [
    C.Connection.Close(reply_code=320, reply_text='CONNECTION_FORCED - bye', class_id=0,
                       method_id=0),
    C.Queue.DeclareOk(queue='amq.gen-abc', message_count=5, consumer_count=2),
    C.Basic.Consume(queue='q', consumer_tag='c1', no_ack=True, exclusive=True,
                    arguments={'x-priority': 3}),
    C.Basic.Cancel(consumer_tag='c1', nowait=True),
    C.Exchange.Declare(exchange='x', exchange_type='topic', durable=True, internal=True),
])
def test_encode_method_matches_pamqp(method):
    assert encode_method(5, method) == pframe.marshal(method, 5)


def test_encode_method_accepts_names_pamqp_would_reject():
    method = C.Queue.DeclareOk.__new__(C.Queue.DeclareOk)
    method.queue, method.message_count, method.consumer_count = 'a queue/with spaces', 0, 0
    _, _, decoded = pframe.unmarshal(encode_method(1, method))
    assert decoded.queue == 'a queue/with spaces'
