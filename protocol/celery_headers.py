"""The Celery fields of a message's ``headers`` table, read in place.

Celery's message protocol v2 puts a task's name, id, ETA, retry count and
lineage in the AMQP ``headers`` property (``lang``, ``task``, ``id``,
``shadow``, ``eta``, ``expires``, ``group``, ``group_index``, ``retries``,
``timelimit``, ``root_id``, ``parent_id``, ...).  The broker wants a few of
them without decoding the table: :func:`task_name` runs once per routed
message that has a headers table, so it costs one ``bytes.find`` over the
table for the encoded key (``\\x04task`` then the long-string type ``S``)
and one slice; the other fields are read the same way, but only when a view
asks (the ETA of an unacked delivery, its id).

A key is found by its encoded bytes (its length byte, a control
character, then the key and, for ``task``, the long-string type), not by
walking the table entry by entry, whatever the order of the entries (py-amqp
keeps Celery's, pamqp sorts them): text values hold no control characters,
so the first match is the key itself.  A producer that hides the encoded
key inside an earlier binary value only mislabels its own messages, within
the task-name bound.

Celery's protocol v1 carries these fields in the body; bodies are never
decoded here, so v1 messages are not recognised as tasks.
"""

from __future__ import annotations

import struct
from typing import Any

from .properties import CONTENT_ENCODING, CONTENT_TYPE, HEADERS

_U32 = struct.Struct('>I')
_INTS = {
    ord('b'): struct.Struct('>b'), ord('B'): struct.Struct('>B'),
    ord('s'): struct.Struct('>h'), ord('U'): struct.Struct('>h'),
    ord('u'): struct.Struct('>H'), ord('I'): struct.Struct('>i'),
    ord('i'): struct.Struct('>I'), ord('l'): struct.Struct('>q'),
    ord('L'): struct.Struct('>Q'),
}
_LONGSTR = ord('S')
_VOID = ord('V')

#: The bit of the content header's first property-flags byte for ``headers``.
HEADERS_BIT = HEADERS >> 8

_TASK_KEY = b'\x04taskS'


def table_bounds(header: bytes) -> tuple[int, int]:
    """Start and end of the headers table's entries in a content-header
    payload (whose property flags say it has one)."""
    flags = header[12] << 8 | header[13]
    p = 16 if flags & 1 else 14
    if flags & CONTENT_TYPE:
        p += 1 + header[p]
    if flags & CONTENT_ENCODING:
        p += 1 + header[p]
    size = _U32.unpack_from(header, p)[0]
    return p + 4, p + 4 + size


def task_name(header: bytes) -> bytes | None:
    """The raw ``task`` header of a content-header payload that has a
    headers table (the caller checked :data:`HEADERS_BIT`), or None.

    The hot path: one find and one slice.  Raises ``IndexError`` or
    ``struct.error`` on a truncated header (the caller's scan of the other
    properties raises on those first).
    """
    start, end = table_bounds(header)
    at = header.find(_TASK_KEY, start, end)
    if at < 0:
        return None
    at += 6
    n = _U32.unpack_from(header, at)[0]
    at += 4
    if at + n > end:
        return None
    return header[at:at + n]


def field(header: bytes, key: str) -> Any:
    """The value of one scalar header (long string or integer), or None
    when it is absent, void or of another type.  For the views, not the
    hot path."""
    if not header[12] & HEADERS_BIT:
        return None
    try:
        start, end = table_bounds(header)
        encoded = key.encode()
        at = header.find(bytes((len(encoded),)) + encoded, start, end)
        if at < 0:
            return None
        at += 1 + len(encoded)
        kind = header[at]
        at += 1
        if kind == _LONGSTR:
            n = _U32.unpack_from(header, at)[0]
            at += 4
            if at + n > end:
                return None
            return header[at:at + n].decode('utf-8', 'replace')
        if kind == _VOID:
            return None
        unpacker = _INTS.get(kind)
        if unpacker is None:
            return None
        return unpacker.unpack_from(header, at)[0]
    except (IndexError, struct.error):
        return None
