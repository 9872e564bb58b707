"""A delivered message, decoded straight from its frames (sans-IO).

basic.deliver, the content header and the headers table are unpacked with
``struct``; pamqp decodes only the table values Celery never sends
(decimals, timestamps, byte arrays, 16-bit and unsigned integers). pamqp's
own table decoder copies the rest of the payload for every value.

The headers table is kept as bytes and decoded when first asked for;
:func:`scan_table` reads a few entries and skips the others, which is what
the worker's main process does (a pool process decodes the whole table).
``tests/worker/test_delivery.py`` checks the results against pamqp.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from pamqp import decode

from leveret.protocol.properties import (
    APP_ID,
    CLUSTER_ID,
    CONTENT_ENCODING,
    CONTENT_TYPE,
    CORRELATION_ID,
    DELIVERY_MODE,
    EXPIRATION,
    HEADERS,
    MESSAGE_ID,
    PRIORITY,
    REPLY_TO,
    TIMESTAMP,
    TYPE,
    USER_ID,
)

_DELIVERY_TAG = struct.Struct('>QB')
_HEADER = struct.Struct('>HHQH')
_U64 = struct.Struct('>Q')
_U32 = struct.Struct('>I')
_I32 = struct.Struct('>i')
_I64 = struct.Struct('>q')
_F64 = struct.Struct('>d')

#: Errors that mean a malformed payload (``struct.error`` is no ValueError).
MALFORMED = (IndexError, ValueError, struct.error)

#: basic.deliver: class 60, method 60.
DELIVER_ID = b'\x00\x3c\x00\x3c'


class Properties:
    """The basic properties of a message (absent ones are None)."""

    __slots__ = ('content_type', 'content_encoding', 'headers_raw', '_headers', 'delivery_mode',
                 'priority', 'correlation_id', 'reply_to', 'expiration', 'message_id',
                 'timestamp', 'message_type', 'user_id', 'app_id', 'cluster_id')

    def __init__(self) -> None:
        self.content_type: str | None = None
        self.content_encoding: str | None = None
        #: The headers table as received (its 4-byte length first).
        self.headers_raw: bytes | None = None
        self._headers: dict[str, Any] | None = None
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

    @property
    def headers(self) -> dict[str, Any] | None:
        """The headers table, decoded on first use (raises one of
        :data:`MALFORMED` if it cannot be read)."""
        if self._headers is None and self.headers_raw is not None:
            self._headers = decode_table(self.headers_raw, 0)[0]
        return self._headers


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


def body_size(payload: bytes) -> int:
    """The body size a content-header payload announces."""
    if len(payload) < 14:
        raise ValueError('content header too short')
    return int(_U64.unpack_from(payload, 4)[0])


def decode_content_header(payload: bytes) -> tuple[int, Properties]:
    """``(body_size, properties)`` of a content-header payload.

    Raises one of :data:`MALFORMED` when the payload is malformed.
    """
    _class_id, _weight, size, flags = _HEADER.unpack_from(payload)
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
        end = p + 4 + _U32.unpack_from(payload, p)[0]
        if end > len(payload):
            raise ValueError('field table longer than its payload')
        props.headers_raw = payload[p:end]
        p = end
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
    return size, props


def decode_table(data: bytes, p: int) -> tuple[dict[str, Any], int]:
    """The field table at ``data[p:]`` and the offset after it."""
    end = p + 4 + _U32.unpack_from(data, p)[0]
    if end > len(data):
        raise ValueError('field table longer than its payload')
    p += 4
    table: dict[str, Any] = {}
    keys = _KEYS
    while p < end:
        n = data[p]
        raw_key = data[p + 1:p + 1 + n]
        key = keys.get(raw_key)
        if key is None:
            key = raw_key.decode()
            if len(keys) < _KEYS_MAX:
                keys[raw_key] = key
        p += 1 + n
        kind = data[p]
        # The kinds of a Celery task's headers inline; the rest in _value.
        if kind == 0x53:  # S: long string
            start = p + 5
            p = start + _U32.unpack_from(data, p + 1)[0]
            raw = data[start:p]
            try:
                table[key] = raw.decode()
            except UnicodeDecodeError:
                table[key] = raw  # as pamqp: undecodable text stays bytes
        elif kind == 0x56:  # V: void
            table[key] = None
            p += 1
        elif kind == 0x74:  # t: boolean
            table[key] = bool(data[p + 1])
            p += 2
        else:
            table[key], p = _value(data, p)
    if p != end:
        raise ValueError('field table entries overrun its length')
    return table, end


class Wanted:
    """The table keys :func:`scan_table` picks out: raw key -> the name to
    give it. A key of a length none of them has is skipped unread."""

    __slots__ = ('names', 'lengths')

    def __init__(self, names: dict[bytes, str]) -> None:
        self.names = names
        self.lengths = frozenset(len(key) for key in names)


def scan_table(data: bytes, wanted: Wanted) -> dict[str, Any]:
    """The entries of the table ``data`` (length first) whose raw keys are
    ``wanted``, under the names it gives them; the others are skipped
    undecoded. A key found twice raises ``ValueError`` (decoded whole, the
    table would keep the last one).
    """
    unpack = _U32.unpack_from
    end = 4 + unpack(data, 0)[0]
    if end > len(data):
        raise ValueError('field table longer than its payload')
    names, lengths, sizes = wanted.names, wanted.lengths, _FIXED_SIZES
    p = 4
    found: dict[str, Any] = {}
    while p < end:
        size = data[p]
        n = p + 1 + size
        if size in lengths:
            name = names.get(data[p + 1:n])
            if name is not None:
                if name in found:
                    raise ValueError(f'header {name!r} appears twice')
                found[name], p = _value(data, n)
                continue
        kind = data[n]
        if kind == 0x53:  # S: long string, the most common
            p = n + 5 + unpack(data, n + 1)[0]
            continue
        fixed = sizes.get(kind)
        if fixed is not None:
            p = n + 1 + fixed
        elif kind in _SIZED_KINDS:
            p = n + 5 + unpack(data, n + 1)[0]
        else:
            raise ValueError(f'unknown field kind {kind:#04x}')
    if p != end:
        raise ValueError('field table entries overrun its length')
    return found


#: Value sizes of the fixed-size kinds (void, booleans, integers, floats, timestamps).
_FIXED_SIZES = {0x56: 0, 0x00: 0, 0x74: 1, 0x62: 1, 0x42: 1, 0x73: 2, 0x75: 2, 0x49: 4,
                0x69: 4, 0x66: 4, 0x6C: 8, 0x4C: 8, 0x64: 8, 0x54: 8, 0x44: 5}
#: Kinds whose value starts with its 4-byte length: long string, array, table, bytes.
_SIZED_KINDS = frozenset((0x53, 0x41, 0x46, 0x78))

#: Table keys seen (Celery's header names), decoded once.
_KEYS: dict[bytes, str] = {}
_KEYS_MAX = 512


def _value(data: bytes, p: int) -> tuple[Any, int]:
    kind = data[p]
    p += 1
    if kind == 0x53:  # S: long string
        end = p + 4 + _U32.unpack_from(data, p)[0]
        raw = data[p + 4:end]
        if end > len(data):
            raise ValueError('long string longer than its payload')
        try:
            return raw.decode(), end
        except UnicodeDecodeError:
            return raw, end  # as pamqp: undecodable text stays bytes
    if kind == 0x56:  # V: void
        return None, p
    if kind == 0x74:  # t: boolean
        return bool(data[p]), p + 1
    if kind == 0x62:  # b: 8-bit signed (pamqp's choice for small integers)
        byte = data[p]
        return (byte - 256 if byte > 127 else byte), p + 1
    if kind == 0x6C:  # l: 64-bit signed
        return _I64.unpack_from(data, p)[0], p + 8
    if kind == 0x49:  # I: 32-bit signed
        return _I32.unpack_from(data, p)[0], p + 4
    if kind == 0x46:  # F: table
        return decode_table(data, p)
    if kind == 0x41:  # A: array
        end = p + 4 + _U32.unpack_from(data, p)[0]
        if end > len(data):
            raise ValueError('field array longer than its payload')
        p += 4
        items = []
        while p < end:
            item, p = _value(data, p)
            items.append(item)
        if p != end:
            raise ValueError('field array items overrun its length')
        return items, end
    if kind == 0x64:  # d: double
        return _F64.unpack_from(data, p)[0], p + 8
    consumed, value = decode.embedded_value(data[p - 1:])
    return value, p - 1 + consumed


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
