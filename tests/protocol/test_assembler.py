"""The content assembler: frames in, whole messages (or RabbitMQ's errors) out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from leveret.protocol import FrameReader, codec
from leveret.protocol.assembler import ContentAssembler
from leveret.protocol.constants import (
    BASIC_DELIVER,
    BASIC_PUBLISH,
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_METHOD,
)
from leveret.protocol.errors import FrameError, PreconditionFailed, UnexpectedFrame


def wire(*frames: object, channel: int = 1) -> bytes:
    return b''.join(pframe.marshal(f, channel) for f in frames)  # type: ignore[arg-type]


def header(size: int, **props: object) -> pheader.ContentHeader:
    return pheader.ContentHeader(0, size, C.Basic.Properties(**props))


def assemble(data: bytes, assembler: ContentAssembler[object] | None = None) -> list[object]:
    """Feed ``data`` through the frame reader and the assembler, as the broker does."""
    assembler = assembler or ContentAssembler()
    out: list[object] = []
    for frame_type, _channel, payload in FrameReader(1 << 20).feed(data):
        if frame_type == FRAME_METHOD:
            if assembler.method is not None:
                raise assembler.unexpected()
            method = codec.decode_publish(payload)
            assembler.start(method, BASIC_PUBLISH)
            continue
        if frame_type == FRAME_HEADER:
            done = assembler.header_frame(payload)
        else:
            assert frame_type == FRAME_BODY
            done = assembler.body_frame(payload)
        if done is not None:
            out.append(done)
    return out


@given(body=st.binary(max_size=5000), step=st.integers(min_value=1, max_value=1500))
@settings(max_examples=100)
def test_a_publish_and_its_body_frames_make_one_message(body, step):
    props = {'content_type': 'text/plain', 'delivery_mode': 2}
    frames = [C.Basic.Publish(exchange='x', routing_key='rk'), header(len(body), **props)]
    frames += [pbody.ContentBody(body[i:i + step]) for i in range(0, len(body), step)]
    [(publish, header_payload, got)] = assemble(wire(*frames))
    assert (publish.exchange, publish.routing_key) == ('x', 'rk')
    assert got == body
    # The header is relayed as it came: the very payload pamqp framed.
    assert header_payload == pframe.marshal(header(len(body), **props), 1)[7:-1]


def test_messages_follow_each_other_and_an_empty_body_needs_no_body_frame():
    data = wire(C.Basic.Publish(routing_key='a'), header(0),
                C.Basic.Publish(routing_key='b'), header(3), pbody.ContentBody(b'xyz'))
    [(first, _, body_a), (second, _, body_b)] = assemble(data)
    assert (first.routing_key, body_a) == ('a', b'')
    assert (second.routing_key, body_b) == ('b', b'xyz')


def test_the_assembler_is_ready_for_the_next_method_after_a_message():
    assembler: ContentAssembler[object] = ContentAssembler()
    assemble(wire(C.Basic.Publish(), header(2), pbody.ContentBody(b'hi')), assembler)
    assert assembler.method is None and assembler.header is None


def expect(exc_type: type, text: str, ids: tuple[int, int], data: bytes,
           assembler: ContentAssembler[object] | None = None) -> None:
    with pytest.raises(exc_type) as info:
        assemble(data, assembler)
    assert info.value.text == text
    assert (info.value.class_id, info.value.method_id) == ids


def test_a_method_frame_before_the_content_header_is_505():
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected content header for class 60, '
           'got non content header frame instead', (60, 40),
           wire(C.Basic.Publish(), C.Basic.Publish()))


def test_a_method_frame_inside_the_body_is_505():
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected content body, got non content body '
           'frame instead', (60, 40),
           wire(C.Basic.Publish(), header(5), pbody.ContentBody(b'ab'), C.Basic.Publish()))


def test_content_without_a_method_is_505_naming_no_method():
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected method frame, got non method frame '
           'instead', (0, 0), wire(header(3)))
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected method frame, got non method frame '
           'instead', (0, 0), wire(pbody.ContentBody(b'abc')))


def test_a_body_before_the_header_and_a_second_header_are_505():
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected content header for class 60, '
           'got non content header frame instead', (60, 40),
           wire(C.Basic.Publish(), pbody.ContentBody(b'abc')))
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - expected content body, got non content body '
           'frame instead', (60, 40), wire(C.Basic.Publish(), header(3), header(3)))


def test_more_body_than_announced_is_505():
    expect(UnexpectedFrame, 'UNEXPECTED_FRAME - received 4 body bytes, more than the content '
           'header announced (3)', (60, 40),
           wire(C.Basic.Publish(), header(3), pbody.ContentBody(b'ab'),
                pbody.ContentBody(b'cd')))


def test_a_header_of_another_class_or_with_a_weight_is_505():
    other_class = b'\x00\x32\x00\x00' + (3).to_bytes(8, 'big') + b'\x00\x00'
    weighted = b'\x00\x3c\x00\x01' + (3).to_bytes(8, 'big') + b'\x00\x00'
    for payload, text in (
            (other_class, 'expected content header for class 60, got one for class 50 '
                          'instead'),
            (weighted, 'expected content header for class 60, got non content header frame '
                       'instead')):
        frame = b'\x02\x00\x01' + len(payload).to_bytes(4, 'big') + payload + b'\xce'
        expect(UnexpectedFrame, f'UNEXPECTED_FRAME - {text}', (60, 40),
               wire(C.Basic.Publish()) + frame)


def test_a_short_content_header_is_a_frame_error():
    frame = b'\x02\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x00\xce'
    expect(FrameError, 'FRAME_ERROR - cannot decode frame: content header too short', (60, 40),
           wire(C.Basic.Publish()) + frame)


def test_a_body_larger_than_the_limit_is_refused_when_its_header_arrives():
    expect(PreconditionFailed, 'PRECONDITION_FAILED - message size 101 is larger than '
           'configured max size 100', (60, 40), wire(C.Basic.Publish(), header(101)),
           ContentAssembler(max_body_size=100))
    [(_, _, body)] = assemble(wire(C.Basic.Publish(), header(100), pbody.ContentBody(b'x' * 100)),
                              ContentAssembler(max_body_size=100))
    assert len(body) == 100


def test_reset_forgets_a_content_in_progress():
    assembler: ContentAssembler[object] = ContentAssembler()
    assembler.start('publish', BASIC_PUBLISH)
    assembler.header_frame(pframe.marshal(header(10), 1)[7:-1])
    assembler.body_frame(b'abc')
    assembler.reset()
    assert assembler.method is None
    assembler.start('next', BASIC_PUBLISH)
    assert assembler.header_frame(pframe.marshal(header(2), 1)[7:-1]) is None
    assert assembler.body_frame(b'ok') == ('next', pframe.marshal(header(2), 1)[7:-1], b'ok')


def test_a_delivery_is_assembled_the_same_way():
    """The worker's side: basic.deliver content, any method object."""
    assembler: ContentAssembler[str] = ContentAssembler()
    content = wire(header(5, content_type='application/json'), pbody.ContentBody(b'[1,2'),
                   pbody.ContentBody(b']'))
    head, first, last = (payload for _, _, payload in FrameReader(1 << 20).feed(content))
    assembler.start('delivery 1', BASIC_DELIVER)
    assert assembler.header_frame(head) is None
    assert assembler.body_frame(first) is None
    assert assembler.body_frame(last) == ('delivery 1', head, b'[1,2]')
    # Errors name basic.deliver, the method that started the content.
    assembler.start('delivery 2', BASIC_DELIVER)
    with pytest.raises(UnexpectedFrame) as info:
        assembler.body_frame(first)
    assert (info.value.class_id, info.value.method_id) == (60, 60)
