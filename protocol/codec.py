"""Hand-written codec for the per-message methods (the hot path).

pamqp is the reference codec for every method, but its generic
marshal/unmarshal costs tens of microseconds per message.  The methods that
occur once per message (basic.publish, the content header and body,
basic.deliver, basic.get-ok, basic.ack/nack/reject and the publisher
confirms) are packed and unpacked here with ``struct``.  ``tests/
protocol/test_codec_fastpath.py`` checks every function byte for byte against pamqp
with hypothesis.

Content headers are never re-encoded: the publisher's header payload (class
id, weight, body size and the raw property list) is relayed verbatim, as
RabbitMQ does with ``properties_bin``.
"""

from __future__ import annotations

import struct
from typing import Protocol

from .constants import FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_METHOD

_FRAME_HEADER = struct.Struct('>BHI')
_U16 = struct.Struct('>H')
_U64 = struct.Struct('>Q')
#: class id, weight and body size at the start of a content-header payload.
CONTENT_HEADER_SIZES = _HEADER_SIZES = struct.Struct('>HHQ')
_TAG_BIT = struct.Struct('>QB')
_ACK_FRAME = struct.Struct('>BHIIQBB')        # whole basic.ack / basic.nack frame
_ACK_PAYLOAD = struct.Struct('>QB')
_REJECT_PAYLOAD = struct.Struct('>QB')

_DELIVER_HEAD = struct.Struct('>BHII')     # frame type, channel, size, class+method
_END_AND_HEAD = struct.Struct('>BBHI')     # a frame's end octet + the next frame's header
_DELIVER_INDEX = 0x003C003C
_GET_OK_ID = b'\x00\x3c\x00\x47'
_RETURN_ID = b'\x00\x3c\x00\x32'
_END = b'\xce'


class Publish:
    """A decoded basic.publish method (the content follows separately)."""

    __slots__ = ('exchange', 'routing_key', 'mandatory', 'immediate', 'exchange_and_key')

    def __init__(self, exchange: str, routing_key: str, mandatory: bool,
                 immediate: bool, exchange_and_key: bytes | None = None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.mandatory = mandatory
        self.immediate = immediate
        #: The two short strings as received: basic.deliver reuses them.
        self.exchange_and_key = exchange_and_key


def shortstr(value: str) -> bytes:
    """Encode an AMQP short string (length octet + UTF-8)."""
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError('short string longer than 255 bytes')
    return bytes((len(raw),)) + raw


def decode_publish(payload: bytes) -> Publish:
    """Decode a basic.publish method payload (class and method id included).

    Raises ``IndexError``/``UnicodeDecodeError``/``ValueError`` on a
    malformed payload; the caller maps those to a syntax error.
    """
    # class(2) method(2) reserved-1(2) exchange(shortstr) rk(shortstr) bits
    n = payload[6]
    p = 7 + n
    exchange = payload[7:p].decode()
    m = payload[p]
    q = p + 1 + m
    routing_key = payload[p + 1:q].decode()
    bits = payload[q]
    if q + 1 != len(payload):
        raise ValueError('basic.publish payload has a wrong length')
    return Publish(exchange, routing_key, bool(bits & 1), bool(bits & 2), payload[6:q])


def decode_content_header(payload: bytes) -> tuple[int, int, int]:
    """Return ``(class_id, weight, body_size)`` of a content-header payload."""
    if len(payload) < 14:
        raise ValueError('content header too short')
    return _HEADER_SIZES.unpack_from(payload)


def decode_ack(payload: bytes) -> tuple[int, bool]:
    """basic.ack payload -> ``(delivery_tag, multiple)``."""
    tag, bits = _ACK_PAYLOAD.unpack_from(payload, 4)
    return tag, bool(bits & 1)


def decode_nack(payload: bytes) -> tuple[int, bool, bool]:
    """basic.nack payload -> ``(delivery_tag, multiple, requeue)``."""
    tag, bits = _ACK_PAYLOAD.unpack_from(payload, 4)
    return tag, bool(bits & 1), bool(bits & 2)


def decode_reject(payload: bytes) -> tuple[int, bool]:
    """basic.reject payload -> ``(delivery_tag, requeue)``."""
    tag, bits = _REJECT_PAYLOAD.unpack_from(payload, 4)
    return tag, bool(bits & 1)


def method_frame(channel: int, payload: bytes) -> bytes:
    """Wrap a method payload (ids included) in a frame."""
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


class Deliverable(Protocol):
    """What :func:`deliver` reads of a message (the broker's ``Message``)."""

    header: bytes
    body: bytes
    redelivered: bool
    exchange_and_key: bytes


def deliver(out: list[bytes | memoryview], channel: int, consumer_tag: bytes,
            delivery_tag: int, message: Deliverable, frame_max: int) -> int:
    """Append basic.deliver and its content frames to ``out``; return the body size.

    This is the broker's hot path.  ``consumer_tag`` is an encoded short
    string cached by the consumer; the message keeps its exchange and
    routing key encoded and the publisher's content-header payload, which
    is relayed verbatim.  The pieces are appended unjoined: the connection
    joins its whole output once per loop turn, so a body is never copied
    here.
    """
    body = message.body
    size = len(body)
    header = message.header
    exchange_and_key = message.exchange_and_key
    head = _DELIVER_HEAD.pack(FRAME_METHOD, channel,
                              13 + len(consumer_tag) + len(exchange_and_key), _DELIVER_INDEX)
    if size <= frame_max - 8:
        # Method, header and body frame, each frame-end octet packed with
        # the next frame's header: six or nine pieces in all.
        out += (head, consumer_tag, _TAG_BIT.pack(delivery_tag, message.redelivered),
                exchange_and_key, _END_AND_HEAD.pack(FRAME_END, FRAME_HEADER, channel,
                                                     len(header)), header)
        if size:
            out += (_END_AND_HEAD.pack(FRAME_END, FRAME_BODY, channel, size), body, _END)
        else:
            out.append(_END)
    else:
        out += (head, consumer_tag, _TAG_BIT.pack(delivery_tag, message.redelivered),
                exchange_and_key, _END)
        out += content_frames(channel, header, body, frame_max)
    return size


def get_ok_frame(channel: int, delivery_tag: int, redelivered: bool,
                 exchange_and_key: bytes, message_count: int) -> bytes:
    """basic.get-ok method frame."""
    payload = b''.join((_GET_OK_ID, _TAG_BIT.pack(delivery_tag, redelivered),
                        exchange_and_key, message_count.to_bytes(4, 'big')))
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


def return_frame(channel: int, reply_code: int, reply_text: str,
                 exchange_and_key: bytes) -> bytes:
    """basic.return method frame."""
    payload = b''.join((_RETURN_ID, _U16.pack(reply_code), shortstr(reply_text),
                        exchange_and_key))
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


def content_frames(channel: int, header: bytes, body: bytes,
                   frame_max: int) -> list[bytes | memoryview]:
    """The header frame and as many body frames as ``frame_max`` requires.

    ``header`` is the relayed content-header payload.  An empty body sends
    no body frame, as RabbitMQ does.
    """
    out: list[bytes | memoryview] = [
        _FRAME_HEADER.pack(FRAME_HEADER, channel, len(header)), header, _END]
    size = len(body)
    if size:
        chunk = frame_max - 8
        if size <= chunk:
            out += (_FRAME_HEADER.pack(FRAME_BODY, channel, size), body, _END)
        else:
            view = memoryview(body)
            for start in range(0, size, chunk):
                part = view[start:start + chunk]
                out += (_FRAME_HEADER.pack(FRAME_BODY, channel, len(part)), part, _END)
    return out


def ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Server basic.ack frame (publisher confirms)."""
    return _ACK_FRAME.pack(FRAME_METHOD, channel, 13, 0x003C0050, delivery_tag,
                           multiple, 0xCE)


def nack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    """Server basic.nack frame (publisher confirms); requeue is always 0."""
    return _ACK_FRAME.pack(FRAME_METHOD, channel, 13, 0x003C0078, delivery_tag,
                           multiple, 0xCE)


def body_size_header(header: bytes, body_size: int) -> bytes:
    """A copy of a content-header payload with another body size."""
    return header[:4] + _U64.pack(body_size) + header[12:]


# --- frames a client sends (the bundled worker) --------------------------------
# A consumer's basic.ack has the layout of the broker's confirm ack: ack_frame.

_PUBLISH_ID = b'\x00\x3c\x00\x28'
#: The publish bits octet by mandatory | immediate << 1.
_PUBLISH_BITS = (b'\x00', b'\x01', b'\x02', b'\x03')


def reject_frame(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    """Client basic.reject frame."""
    return _ACK_FRAME.pack(FRAME_METHOD, channel, 13, 0x003C005A, delivery_tag,
                           requeue, 0xCE)


def publish_frame(channel: int, exchange: str, routing_key: str,
                  mandatory: bool = False, immediate: bool = False) -> bytes:
    """Client basic.publish method frame (the content frames follow it)."""
    payload = b''.join((_PUBLISH_ID, b'\x00\x00', shortstr(exchange), shortstr(routing_key),
                        _PUBLISH_BITS[mandatory | immediate << 1]))
    return _FRAME_HEADER.pack(FRAME_METHOD, channel, len(payload)) + payload + _END


def content_header(body_size: int, flags: int, property_list: bytes,
                   class_id: int = 60) -> bytes:
    """A content-header payload: class id, weight 0, body size, the property
    flags and the encoded properties they announce (for :func:`content_frames`)."""
    return _HEADER_SIZES.pack(class_id, 0, body_size) + _U16.pack(flags) + property_list
