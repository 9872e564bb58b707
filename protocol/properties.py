"""Reading and rewriting the basic properties of a content header.

Messages keep the publisher's content-header payload as raw bytes; only the
few properties the broker acts on (delivery mode, priority, expiration,
user id) are scanned, without decoding the rest.  When a property must
change (dead-lettering adds ``x-death``), the header is decoded and
re-encoded with pamqp.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands
from pamqp.header import ContentHeader

_U16 = struct.Struct('>H')
_U32 = struct.Struct('>I')

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

_SCANNED = DELIVERY_MODE | PRIORITY | EXPIRATION | USER_ID

Scan = tuple[int, int, 'str | None', 'str | None']


def scan(header: bytes) -> Scan:
    """Return ``(delivery_mode, priority, expiration, user_id)``.

    ``header`` is a whole content-header payload (class id, weight, body
    size, flags, properties).  Absent properties read as 0 or None.
    Raises ``IndexError``/``struct.error`` on a truncated header.
    """
    flags = _U16.unpack_from(header, 12)[0]
    if not flags & _SCANNED:
        return 0, 0, None, None
    p = 14
    if flags & 1:   # a continuation flag word: no property uses it in 0-9-1
        p += 2
    if flags & CONTENT_TYPE:
        p += 1 + header[p]
    if flags & CONTENT_ENCODING:
        p += 1 + header[p]
    if flags & HEADERS:
        p += 4 + _U32.unpack_from(header, p)[0]
    delivery_mode = priority = 0
    if flags & DELIVERY_MODE:
        delivery_mode = header[p]
        p += 1
    if flags & PRIORITY:
        priority = header[p]
        p += 1
    expiration = user_id = None
    if flags & (EXPIRATION | USER_ID):
        if flags & CORRELATION_ID:
            p += 1 + header[p]
        if flags & REPLY_TO:
            p += 1 + header[p]
        if flags & EXPIRATION:
            n = header[p]
            expiration = header[p + 1:p + 1 + n].decode()
            p += 1 + n
        if flags & USER_ID:
            if flags & MESSAGE_ID:
                p += 1 + header[p]
            if flags & TIMESTAMP:
                p += 8
            if flags & TYPE:
                p += 1 + header[p]
            n = header[p]
            user_id = header[p + 1:p + 1 + n].decode()
    if p > len(header):
        raise IndexError('content header properties truncated')
    return delivery_mode, priority, expiration, user_id


def decode(header: bytes) -> commands.Basic.Properties:
    """Decode every property of a content-header payload with pamqp."""
    content = ContentHeader()
    content.unmarshal(header)
    return content.properties


def encode(properties: commands.Basic.Properties, body_size: int) -> bytes:
    """Encode a content-header payload for ``properties``."""
    return ContentHeader(0, body_size, properties).marshal()


def with_header(header: bytes, key: str, value: Any) -> bytes:
    """A copy of a content-header payload with one entry of ``headers`` set."""
    content = ContentHeader()
    content.unmarshal(header)
    props = content.properties
    table = dict(props.headers or {})
    table[key] = value
    props.headers = table
    return content.marshal()
