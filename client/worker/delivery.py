"""A delivered message, decoded straight from its frames (sans-IO).

basic.deliver and the content header are unpacked with ``struct``; only the
headers table goes through pamqp (``decode.field_table`` on the raw bytes).
``tests/test_worker_delivery.py`` checks the results against pamqp.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from pamqp import decode

_DELIVERY_TAG = struct.Struct('>QB')
_HEADER = struct.Struct('>HHQH')
_U64 = struct.Struct('>Q')

#: basic.deliver: class 60, method 60.
DELIVER_ID = b'\x00\x3c\x00\x3c'

# Property flag bits, in wire order.
CONTENT_TYPE = 0x8000
CONTENT_ENCODING = 0x4000
HEADERS = 0x2000
DELIVERY_MODE = 0x1000
PRIORITY = 0x0800
CORRELATION_ID = 0x0400
REPLY_TO = 0x0200
EXPIRATION = 0x0100
MESSAGE_ID = 0x0080
TIMESTAMP = 0x0040
TYPE = 0x0020
USER_ID = 0x0010
APP_ID = 0x0008
CLUSTER_ID = 0x0004


class Properties:
    """The basic properties of a message (absent ones are None)."""

    __slots__ = ('content_type', 'content_encoding', 'headers', 'delivery_mode', 'priority',
                 'correlation_id', 'reply_to', 'expiration', 'message_id', 'timestamp',
                 'message_type', 'user_id', 'app_id', 'cluster_id')

    def __init__(self) -> None:
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        self.headers: dict[str, Any] | None = None
        self.delivery_mode: int | None = None
        self.priority: int | None = None
        self.correlation_id: str | None = None
        self.reply_to: str | None = None
        self.expiration: str | None = None
        self.message_id: str | None = None
        self.timestamp: datetime | None = None
        self.message_type: str | None = None
        self.user_id: str | None = None
        self.app_id: str | None = None
        self.cluster_id: str | None = None


class Delivery:
    """One basic.deliver with its content."""

    __slots__ = ('consumer_tag', 'delivery_tag', 'redelivered', 'exchange', 'routing_key',
                 'body_size', 'properties', 'body')

    def __init__(self, consumer_tag: str, delivery_tag: int, redelivered: bool,
                 exchange: str, routing_key: str) -> None:
        self.consumer_tag = consumer_tag
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routing_key = routing_key
        self.body_size = 0
        self.properties: Properties | None = None
        self.body = b''


def decode_deliver(payload: bytes) -> Delivery:
    """A basic.deliver method payload (class and method ids included).

    Raises ``IndexError``, ``struct.error`` or ``UnicodeDecodeError`` when
    the payload is malformed.
    """
    n = payload[4]
    p = 5 + n
    consumer_tag = payload[5:p].decode()
    delivery_tag, bits = _DELIVERY_TAG.unpack_from(payload, p)
    p += 9
    n = payload[p]
    exchange = payload[p + 1:p + 1 + n].decode()
    p += 1 + n
    n = payload[p]
    routing_key = payload[p + 1:p + 1 + n].decode()
    if p + 1 + n != len(payload):
        raise IndexError('basic.deliver payload has a wrong length')
    return Delivery(consumer_tag, delivery_tag, bool(bits & 1), exchange, routing_key)


def decode_content_header(payload: bytes) -> tuple[int, Properties]:
    """``(body_size, properties)`` of a content-header payload.

    Raises ``ValueError`` (``UnicodeDecodeError`` included), ``IndexError``
    or ``struct.error`` when the payload is malformed.
    """
    _class_id, _weight, body_size, flags = _HEADER.unpack_from(payload)
    props = Properties()
    p = 14
    if flags & 1:  # a continuation flag word: no property uses it in 0-9-1
        p += 2
    if flags & CONTENT_TYPE:
        n = payload[p]
        props.content_type = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & CONTENT_ENCODING:
        n = payload[p]
        props.content_encoding = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & HEADERS:
        consumed, table = decode.field_table(payload[p:])
        props.headers = table
        p += consumed
    if flags & DELIVERY_MODE:
        props.delivery_mode = payload[p]
        p += 1
    if flags & PRIORITY:
        props.priority = payload[p]
        p += 1
    if flags & CORRELATION_ID:
        n = payload[p]
        props.correlation_id = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & REPLY_TO:
        n = payload[p]
        props.reply_to = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & EXPIRATION:
        n = payload[p]
        props.expiration = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & (MESSAGE_ID | TIMESTAMP | TYPE | USER_ID | APP_ID | CLUSTER_ID):
        p = _decode_rare(payload, p, flags, props)
    if p > len(payload):
        raise IndexError('content header properties truncated')
    return body_size, props


def _decode_rare(payload: bytes, p: int, flags: int, props: Properties) -> int:
    """The properties Celery does not send."""
    if flags & MESSAGE_ID:
        n = payload[p]
        props.message_id = payload[p + 1:p + 1 + n].decode()
        p += 1 + n
    if flags & TIMESTAMP:
        value = _U64.unpack_from(payload, p)[0]
        if value > 0xFFFFFFFF:  # past 2106: milliseconds (as pamqp reads it)
            value /= 1000.0
        props.timestamp = datetime.fromtimestamp(value, tz=UTC)
        p += 8
    for flag, name in ((TYPE, 'message_type'), (USER_ID, 'user_id'), (APP_ID, 'app_id'),
                       (CLUSTER_ID, 'cluster_id')):
        if flags & flag:
            n = payload[p]
            setattr(props, name, payload[p + 1:p + 1 + n].decode())
            p += 1 + n
    return p
