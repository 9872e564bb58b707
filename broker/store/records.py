"""The message log's record format.

Every record is ``length (u32) | type (u8) | payload | crc32 (u32)`` where
``length`` counts the type, the payload and the CRC, and the CRC covers the
type and the payload.  A record whose length runs past the end of the file
or whose CRC does not match ends the readable part of a segment: that is a
torn tail, written when the process died mid-write, and it can only hold
data that was never confirmed.

Record types:

* ``P`` publish: a persistent message entered a durable queue.
* ``A`` ack: the message left the queue for good (acked, expired, purged...).
* ``D`` delivered: the message went out to a consumer once more; on recovery
  the number of ``D`` records gives ``redelivered`` and the delivery count.
"""

from __future__ import annotations

import struct
import zlib

PUBLISH = ord('P')
ACK = ord('A')
DELIVERED = ord('D')

_LEN = struct.Struct('<I')
_HEAD = struct.Struct('<IB')                 # length, type
_ID_RECORD = struct.Struct('<IBQI')          # length, type, id, crc
_PUBLISH_FIXED = struct.Struct('<QQIqH')     # id, seq, delivery count, expires ms, key length
_U32 = struct.Struct('<I')
_U64 = struct.Struct('<Q')
_crc32 = zlib.crc32


def publish_record(store_id: int, seq: int, delivery_count: int, expires_ms: int,
                   queue_key: bytes, exchange_and_key: bytes, header: bytes,
                   body: bytes) -> bytes:
    """A ``P`` record.

    ``expires_ms`` is a wall-clock deadline in ms (0: none);
    ``exchange_and_key`` is the exchange and routing key as two AMQP short
    strings, as the message already keeps them for basic.deliver.
    """
    payload = b''.join((
        _PUBLISH_FIXED.pack(store_id, seq, delivery_count, expires_ms, len(queue_key)),
        queue_key, exchange_and_key, _U32.pack(len(header)), header, body))
    crc = _crc32(payload, _crc32(b'P'))
    return _HEAD.pack(len(payload) + 5, PUBLISH) + payload + _U32.pack(crc)


def _id_record(kind: int, store_id: int) -> bytes:
    crc = _crc32(store_id.to_bytes(8, 'little'), _crc32(bytes((kind,))))
    return _ID_RECORD.pack(13, kind, store_id, crc)


def ack_record(store_id: int) -> bytes:
    return _id_record(ACK, store_id)


def delivered_record(store_id: int) -> bytes:
    return _id_record(DELIVERED, store_id)


class Published:
    """A decoded ``P`` record (the payload is ``data[start:end]``)."""

    __slots__ = ('store_id', 'seq', 'delivery_count', 'expires_ms', 'queue_key',
                 'exchange_and_key', 'exchange', 'routing_key', 'header', 'body',
                 'redelivered', 'location')

    def __init__(self, data: bytes, start: int, end: int) -> None:
        (self.store_id, self.seq, self.delivery_count, self.expires_ms,
         key_len) = _PUBLISH_FIXED.unpack_from(data, start)
        p = start + _PUBLISH_FIXED.size
        self.queue_key = data[p:p + key_len]
        p += key_len
        ek_start = p
        n = data[p]
        self.exchange = data[p + 1:p + 1 + n].decode()
        p += 1 + n
        n = data[p]
        self.routing_key = data[p + 1:p + 1 + n].decode()
        p += 1 + n
        #: Already encoded for basic.deliver: kept as is.
        self.exchange_and_key = data[ek_start:p]
        header_len = _U32.unpack_from(data, p)[0]
        p += 4
        self.header = data[p:p + header_len]
        self.body = data[p + header_len:end]
        #: May have been delivered before (set by recovery: a delivery
        #: record, or a run that did not stop cleanly).
        self.redelivered = False
        #: Where the record is (``segment file:offset``), for the log.
        self.location = ''


def read_records(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """Parse ``data`` into ``(type, payload start, payload end)`` records.

    Returns the records and the offset where valid data ends; anything past
    that offset is a torn or corrupt tail.
    """
    view = memoryview(data)
    out: list[tuple[int, int, int]] = []
    append = out.append
    n = len(data)
    pos = 0
    while n - pos >= 5:
        length = _LEN.unpack_from(data, pos)[0]
        end = pos + 4 + length
        if length < 5 or end > n:
            break
        body_end = end - 4
        if _crc32(view[pos + 4:body_end]) != _U32.unpack_from(data, body_end)[0]:
            break
        append((data[pos + 4], pos + 5, body_end))
        pos = end
    return out, pos


def record_id(data: bytes, start: int) -> int:
    """The store id every record starts with."""
    return _U64.unpack_from(data, start)[0]


def describe_queue_key(key: bytes) -> str:
    """``queue 'name' in vhost 'v'`` for a log line."""
    vhost, _, rest = key.partition(b'\x00')
    name = rest.partition(b'\x00')[0]
    return (f"queue '{name.decode(errors='replace')}' in vhost "
            f"'{vhost.decode(errors='replace')}'")


def queue_key(vhost: str, queue: str, incarnation: str) -> bytes:
    """How a record names its queue: vhost, name and the queue's incarnation
    id, so that messages of a deleted queue never come back in a new queue
    of the same name."""
    return f'{vhost}\x00{queue}\x00{incarnation}'.encode()
