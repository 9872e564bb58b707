"""Reading and rewriting the basic properties of a content header.

Messages keep the publisher's content-header payload as raw bytes; only the
few properties the broker acts on (delivery mode, priority, expiration,
user id) are scanned, without decoding the rest.

The headers table is relayed unread: :func:`scan` checks only that it lies
within the content header, so a message costs the same whatever its
headers hold.  A rewrite (``x-delivery-count`` on a requeue, ``x-death``
when dead-lettered, recovery) changes the bytes of one or two fields and
splices them in: every other property and every other header stays byte for
byte as the publisher sent it.  A table the broker cannot read (an unknown
field type, nesting past :data:`~.fieldtable.MAX_DEPTH`, a length that runs
past its end) is kept whole too, and the rewritten fields are appended after
it, where a later rewrite finds them again
(:func:`~.fieldtable.readable_from`): such a message is requeued,
dead-lettered, expired and recovered like any other, and never fails a
rewrite.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands
from pamqp.header import ContentHeader

from . import fieldtable

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
#: Properties :func:`scan` walks over: the scanned ones, the headers it
#: checks, and what comes before them (a rewrite must find the headers).
_WALKED = _SCANNED | HEADERS | CONTENT_TYPE | CONTENT_ENCODING

Scan = tuple[int, int, 'str | None', 'str | None']


class InvalidProperties(ValueError):
    """A content header the broker refuses: the text says what is wrong."""


def scan(header: bytes) -> Scan:
    """Return ``(delivery_mode, priority, expiration, user_id)``.

    ``header`` is a whole content-header payload (class id, weight, body
    size, flags, properties).  Absent properties read as 0 or None.  The
    headers table, when present, is only skipped.  Raises
    :class:`InvalidProperties` (a :class:`ValueError`), ``IndexError`` or
    ``struct.error`` on a malformed header.
    """
    flags = _U16.unpack_from(header, 12)[0]
    if not flags & _WALKED:
        return 0, 0, None, None
    p = 14
    if flags & 1:   # a continuation flag word: no property uses it in 0-9-1
        p += 2
    if flags & CONTENT_TYPE:
        p += 1 + header[p]
    if flags & CONTENT_ENCODING:
        p += 1 + header[p]
    if flags & HEADERS:
        end = p + 4 + _U32.unpack_from(header, p)[0]
        if end > len(header):
            raise InvalidProperties('headers table runs past the end of the content header')
        p = end
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
            p += 1 + n
    if p > len(header):
        raise InvalidProperties('content header properties truncated')
    return delivery_mode, priority, expiration, user_id


class _Layout:
    """Where the headers table and the expiration sit in a scanned header."""

    __slots__ = ('flags', 'headers_start', 'headers_end', 'expiration_start',
                 'expiration_end')

    def __init__(self, header: bytes) -> None:
        flags = self.flags = _U16.unpack_from(header, 12)[0]
        p = 16 if flags & 1 else 14
        if flags & CONTENT_TYPE:
            p += 1 + header[p]
        if flags & CONTENT_ENCODING:
            p += 1 + header[p]
        #: The table's length prefix (where one goes when there is none).
        self.headers_start = p
        if flags & HEADERS:
            p += 4 + _U32.unpack_from(header, p)[0]
        self.headers_end = p
        self.expiration_start = self.expiration_end = p
        if flags & EXPIRATION:
            if flags & DELIVERY_MODE:
                p += 1
            if flags & PRIORITY:
                p += 1
            if flags & CORRELATION_ID:
                p += 1 + header[p]
            if flags & REPLY_TO:
                p += 1 + header[p]
            self.expiration_start = p
            self.expiration_end = p + 1 + header[p]


#: The fields rewrites write: where they look for their own entries after
#: a table they could not read.
REWRITTEN = ('x-delivery-count', 'x-death', 'x-first-death-reason', 'x-first-death-queue',
             'x-first-death-exchange')


def _readable(header: bytes, layout: _Layout,
              keys: tuple[str, ...]) -> tuple[int, dict[str, tuple[int, int]]]:
    """Where the readable entries of the headers table begin, and those
    entries ({} when there is no table)."""
    if not layout.flags & HEADERS:
        return layout.headers_end, {}
    start, end = layout.headers_start + 4, layout.headers_end
    split = fieldtable.readable_from(header, start, end, keys + REWRITTEN)
    return split, fieldtable.entries(header, split, end)


def check_headers(header: bytes) -> None:
    """Raise :class:`InvalidProperties` unless the headers table of a scanned
    content header (if any) is well formed."""
    layout = _Layout(header)
    if layout.flags & HEADERS:
        try:
            fieldtable.check_table(header, layout.headers_start + 4, layout.headers_end)
        except fieldtable.TableError as exc:
            raise InvalidProperties(f'headers: {exc}') from None


def headers(header: bytes) -> dict[str, Any]:
    """The decoded headers table of a scanned content header ({} when
    absent); of a table the broker cannot read, the fields rewrites
    appended after it."""
    layout = _Layout(header)
    found = _readable(header, layout, ())[1]
    return {key: fieldtable.decode_value(header, value_start)
            for key, (value_start, _end) in found.items()}


def header_value(header: bytes, key: str) -> Any:
    """One entry of the headers table of a scanned content header, or None."""
    layout = _Layout(header)
    found = _readable(header, layout, (key,))[1].get(key)
    return None if found is None else fieldtable.decode_value(header, found[0])


def with_headers(header: bytes, values: dict[str, Any], keep: tuple[str, ...] = (),
                 drop_expiration: bool = False) -> bytes:
    """A copy of a scanned content header with entries of ``headers`` set.

    Entries named in ``keep`` are set only when absent; every other entry
    and every other property is copied byte for byte.  ``drop_expiration``
    removes the ``expiration`` property (dead-lettering does).  Of a table
    the broker cannot read, the unreadable part is kept as it is and the
    entries set follow it.
    """
    layout = _Layout(header)
    flags = layout.flags
    start, end = layout.headers_start, layout.headers_end
    split, existing = _readable(header, layout, tuple(values))
    updates = {key: fieldtable.encode_value(value) for key, value in values.items()
               if key not in keep or key not in existing}
    table: dict[str, bytes] = {}
    for key, (value_start, value_end) in existing.items():
        table[key] = updates.pop(key) if key in updates else header[value_start:value_end]
    table.update(updates)
    unreadable = header[start + 4:split] if flags & HEADERS else b''
    parts = [header[:12], _U16.pack(flags | HEADERS), header[14:start],
             fieldtable.encode_entries(table, unreadable)]
    if drop_expiration and flags & EXPIRATION:
        parts[1] = _U16.pack((flags | HEADERS) & ~EXPIRATION)
        parts += (header[end:layout.expiration_start], header[layout.expiration_end:])
    else:
        parts.append(header[end:])
    return b''.join(parts)


def with_header(header: bytes, key: str, value: Any) -> bytes:
    """A copy of a scanned content header with one entry of ``headers`` set."""
    return with_headers(header, {key: value})


def without_headers(header: bytes) -> bytes:
    """A copy of a content header without its headers table."""
    layout = _Layout(header)
    if not layout.flags & HEADERS:
        return header
    return b''.join((header[:12], _U16.pack(layout.flags & ~HEADERS),
                     header[14:layout.headers_start], header[layout.headers_end:]))


def decode(header: bytes) -> commands.Basic.Properties:
    """Decode every property of a content-header payload with pamqp.

    The message path never calls it (see the module docstring).  The
    management API does, on a header :func:`without_headers` (pamqp raises
    on some tables a message can carry), and the tests compare :func:`scan`
    and the rewrites with it.
    """
    content = ContentHeader()
    content.unmarshal(header)
    return content.properties


def encode(properties: commands.Basic.Properties, body_size: int) -> bytes:
    """Encode a content-header payload for ``properties``."""
    return ContentHeader(0, body_size, properties).marshal()
