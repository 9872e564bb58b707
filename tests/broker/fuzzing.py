"""A seeded random mutator over valid AMQP conversations, for the fuzz test.

:func:`conversation` builds the frames of one plausible client session
(handshake, declarations, bindings, publishes with headers, consumes, gets,
acks, transactions, deletions, close) from a ``random.Random``;
:func:`mutate` damages a few of them the ways a broken or hostile client
does: payload bytes flipped, lengths that lie, payloads cut short or padded,
type octets swapped, frames dropped, repeated, reordered or moved to another
channel.  Everything is built from the seed, so a failing connection can be
replayed from its number.

Frames are encoded with Leveret's own encoder (no client-side validation),
so values pamqp refuses to send (non-UTF-8 long strings, byte arrays,
out-of-range timestamps) go out too.
"""

from __future__ import annotations

import datetime
import decimal
import random
import struct
from typing import Any

from pamqp import commands as C

from leveret.protocol import fieldtable
from leveret.protocol.fieldtable import Timestamp
from leveret.protocol.methods import encode_method

from ..rawamqp import PROTOCOL_HEADER

#: Names shared by every connection, so that sessions meet each other's
#: queues, exchanges, bindings and messages.
QUEUES = ('fz.q1', 'fz.q2', 'fz.q3', 'fz.dlq', 'amq.fz', '')
EXCHANGES = ('fz.topic', 'fz.headers', 'fz.direct', 'fz.fanout', 'fz.dlx', '', 'amq.topic',
             'amq.headers', 'amq.direct')
WORDS = ('a', 'b', 'celery', 'task', '*', '#', 'z', 'x.y', '')
#: Type octets a mutation writes over a value's own (``o`` and ``\xff`` are unknown).
TYPE_OCTETS = b'tbBsuIilLfdDTVSxFAo\x00\xff'
#: Arguments the broker reads, with values of the right type and of wrong ones.
QUEUE_ARGUMENTS: dict[str, tuple[Any, ...]] = {
    'x-message-ttl': (0, 50, 60_000, -1, 'soon', 2**40),
    'x-expires': (100, 60_000, 0, 'never'),
    'x-max-length': (0, 1, 5, -3, 'many'),
    'x-max-length-bytes': (10, 1000, -1),
    'x-overflow': ('drop-head', 'reject-publish', 'reject-publish-dlx', 'spill'),
    'x-dead-letter-exchange': ('fz.dlx', '', 'missing', 5),
    'x-dead-letter-routing-key': ('fz.dlq', b'\xff\xfe', 7),
    'x-max-priority': (1, 10, 255, 256, -1, 'high'),
    'x-queue-type': ('classic', 'quorum', 'stream', 'nonsense', 3),
    'x-single-active-consumer': (True, False, 1, 'yes'),
    'x-delivery-limit': (1, 3, -1, 'x'),
    'x-queue-mode': ('lazy', 'default', 'odd'),
}


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A field-table value of any type the wire has."""
    kind = rng.randrange(16 if depth < 3 else 12)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.choice((0, 1, -1, 127, -128, 255, 32767, 65535, 2**31 - 1, 2**32 - 1,
                           2**63 - 1, -2**63))
    if kind == 2:
        return rng.uniform(-1e9, 1e9)
    if kind == 3:
        return rng.choice(('', 'x', 'héllo', 'a' * 300, 'celery', '#', '\x00'))
    if kind == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8)))  # often not UTF-8
    if kind == 5:
        return bytearray(rng.randbytes(rng.randrange(6)))
    if kind == 6:
        return None
    if kind == 7:
        return decimal.Decimal(rng.randrange(-1000, 1000)).scaleb(-rng.randrange(4))
    if kind == 8:
        return datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    if kind == 9:
        return Timestamp(rng.choice((2**63 - 1, 2**64 - 1, 2**40)))
    if kind in (10, 11):
        return rng.choice(('all', 'any', 'all-with-x', 'any-with-x', 'none'))
    if kind in (12, 13):
        return random_table(rng, depth + 1)
    return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def random_table(rng: random.Random, depth: int = 0, size: int = 4) -> dict[str, Any]:
    keys = ('x-match', 'x-death', 'x-delivery-count', 'k', 'é', 'x-first-death-queue',
            'count', 'routing-keys', 'reason', 'time', '\udcff', '')
    return {rng.choice(keys): random_value(rng, depth) for _ in range(rng.randrange(size))}


def method(channel: int, command: Any) -> bytes:
    return encode_method(channel, command)


def content_header(rng: random.Random, channel: int, size: int) -> bytes:
    """A content header with a random choice of properties, encoded by hand."""
    flags = 0
    fields: list[bytes] = []

    def short(text: str | bytes) -> bytes:
        raw = text.encode() if isinstance(text, str) else text
        return bytes((len(raw),)) + raw

    picks = [
        (0x8000, lambda: short(rng.choice(('application/json', 'text/plain', '')))),
        (0x4000, lambda: short('utf-8')),
        (0x2000, lambda: fieldtable.encode_table(random_table(rng, size=6))),
        (0x1000, lambda: bytes((rng.choice((1, 2, 0, 7)),))),
        (0x0800, lambda: bytes((rng.randrange(256),))),
        (0x0400, lambda: short('id-1')),
        (0x0200, lambda: short(rng.choice(('fz.q1', 'amq.rabbitmq.reply-to', '')))),
        (0x0100, lambda: short(rng.choice(('0', '10', '60000', '-5', 'soon', '99999999999999',
                                           b'\xff')))),
        (0x0080, lambda: short('m')),
        (0x0040, lambda: struct.pack('>Q', rng.choice((0, 1_700_000_000, 2**63 - 1)))),
        (0x0020, lambda: short('t')),
        (0x0010, lambda: short(rng.choice(('guest', 'someone', b'\xc3')))),
        (0x0008, lambda: short('app')),
    ]
    for bit, make in picks:
        if rng.random() < 0.35:
            flags |= bit
            fields.append(make())
    payload = struct.pack('>HHQH', 60, 0, size, flags) + b''.join(fields)
    return struct.pack('>BHI', 2, channel, len(payload)) + payload + b'\xce'


def body_frames(rng: random.Random, channel: int, body: bytes) -> list[bytes]:
    frames = []
    step = max(1, rng.choice((len(body) or 1, 3, 64)))
    for i in range(0, len(body), step):
        piece = body[i:i + step]
        frames.append(struct.pack('>BHI', 3, channel, len(piece)) + piece + b'\xce')
    return frames


def operation(rng: random.Random, channel: int, tag: list[int]) -> list[bytes]:
    """The frames of one random client operation on ``channel``."""
    queue = rng.choice(QUEUES)
    exchange = rng.choice(EXCHANGES)
    key = '.'.join(rng.choice(WORDS) for _ in range(rng.randrange(4)))
    pick = rng.randrange(22)
    if pick == 0:
        return [method(channel, C.Exchange.Declare(
            exchange=exchange, exchange_type=rng.choice(('topic', 'headers', 'direct',
                                                         'fanout', 'x-odd')),
            durable=rng.random() < 0.3, auto_delete=rng.random() < 0.3,
            passive=rng.random() < 0.1,
            arguments=rng.choice(({}, {'alternate-exchange': rng.choice(EXCHANGES)},
                                  random_table(rng)))))]
    if pick in (1, 2):
        arguments = {name: rng.choice(values) for name, values in QUEUE_ARGUMENTS.items()
                     if rng.random() < 0.15}
        if rng.random() < 0.2:
            arguments.update(random_table(rng))
        return [method(channel, C.Queue.Declare(
            queue=queue, durable=rng.random() < 0.3, exclusive=rng.random() < 0.3,
            auto_delete=rng.random() < 0.3, passive=rng.random() < 0.1,
            arguments=arguments))]
    if pick in (3, 4):
        return [method(channel, C.Queue.Bind(queue=queue, exchange=exchange, routing_key=key,
                                             arguments=random_table(rng)))]
    if pick == 5:
        return [method(channel, C.Queue.Unbind(queue=queue, exchange=exchange,
                                               routing_key=key, arguments=random_table(rng)))]
    if pick == 6:
        return [method(channel, C.Exchange.Bind(destination=exchange,
                                                source=rng.choice(EXCHANGES), routing_key=key,
                                                arguments=random_table(rng)))]
    if pick == 7:
        return [method(channel, C.Basic.Qos(prefetch_count=rng.randrange(4),
                                            global_=rng.random() < 0.5))]
    if pick in (8, 9):
        return [method(channel, C.Basic.Consume(
            queue=queue, consumer_tag=rng.choice(('', 'c1', 'c2')),
            no_ack=rng.random() < 0.3, exclusive=rng.random() < 0.1,
            arguments=rng.choice(({}, {'x-priority': rng.choice((1, -1, 'hi'))},
                                  random_table(rng)))))]
    if pick == 10:
        return [method(channel, C.Basic.Cancel(consumer_tag=rng.choice(('c1', 'c2', 'none'))))]
    if pick in (11, 12, 13, 14):
        body = rng.randbytes(rng.choice((0, 1, 10, 300)))
        return [method(channel, C.Basic.Publish(exchange=exchange, routing_key=rng.choice(
                    (key, queue)), mandatory=rng.random() < 0.3)),
                content_header(rng, channel, len(body)), *body_frames(rng, channel, body)]
    if pick == 15:
        return [method(channel, C.Basic.Get(queue=queue, no_ack=rng.random() < 0.5))]
    if pick in (16, 17):
        tag[0] += 1
        delivery = rng.randrange(0, tag[0] + 2)
        return [method(channel, rng.choice((
            C.Basic.Ack(delivery_tag=delivery, multiple=rng.random() < 0.3),
            C.Basic.Nack(delivery_tag=delivery, multiple=rng.random() < 0.3,
                         requeue=rng.random() < 0.5),
            C.Basic.Reject(delivery_tag=delivery, requeue=rng.random() < 0.5),
            C.Basic.Recover(requeue=True))))]
    if pick == 18:
        return [method(channel, rng.choice((C.Confirm.Select(), C.Tx.Select(), C.Tx.Commit(),
                                            C.Tx.Rollback(), C.Channel.Flow(active=False),
                                            C.Channel.Flow(active=True))))]
    if pick == 19:
        return [method(channel, rng.choice((
            C.Queue.Purge(queue=queue),
            C.Queue.Delete(queue=queue, if_unused=rng.random() < 0.3,
                           if_empty=rng.random() < 0.3),
            C.Exchange.Delete(exchange=exchange, if_unused=rng.random() < 0.3))))]
    if pick == 20:
        return [method(channel, C.Channel.Close()), method(channel, C.Channel.Open())]
    return [method(channel, C.Exchange.Unbind(destination=exchange, source=rng.choice(EXCHANGES),
                                              routing_key=key))]


def conversation(rng: random.Random, operations: int = 12) -> list[bytes]:
    """A valid client session, one item per frame (the protocol header first)."""
    frames = [PROTOCOL_HEADER,
              method(0, C.Connection.StartOk(
                  client_properties={'product': 'fuzz', 'capabilities': {
                      'consumer_cancel_notify': True, 'connection.blocked': True,
                      'basic.nack': True, 'publisher_confirms': True},
                      'extra': random_table(rng)},
                  mechanism='PLAIN', response='\0guest\0guest')),
              method(0, C.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0)),
              method(0, C.Connection.Open(virtual_host='/')),
              method(1, C.Channel.Open())]
    channels = [1]
    if rng.random() < 0.3:
        frames.append(method(2, C.Channel.Open()))
        channels.append(2)
    tag = [0]
    for _ in range(rng.randrange(1, operations)):
        frames.extend(operation(rng, rng.choice(channels), tag))
    return frames


def _payload_edit(rng: random.Random, frame: bytes) -> bytes:
    """The frame with its payload damaged; the length fixed to match
    (so the damage reaches the decoders) or, now and then, left to lie."""
    frame_type, channel, size = struct.unpack_from('>BHI', frame)
    payload = bytearray(frame[7:7 + size])
    what = rng.randrange(7)
    if what == 0 and payload:
        for _ in range(rng.randrange(1, 4)):
            payload[rng.randrange(len(payload))] = rng.randrange(256)
    elif what == 1 and payload:
        del payload[rng.randrange(len(payload)):]
    elif what == 2:
        payload[rng.randrange(len(payload) + 1):0] = rng.randbytes(rng.randrange(1, 12))
    elif what == 3 and len(payload) >= 4:
        at = rng.randrange(len(payload) - 3)
        payload[at:at + 4] = struct.pack('>I', rng.choice((0, 1, 0xFFFF, 0x7FFFFFFF,
                                                           0xFFFFFFFF, len(payload))))
    elif what == 4 and payload:
        payload[rng.randrange(len(payload))] = rng.choice(TYPE_OCTETS)
    elif what == 5 and payload:
        payload[rng.randrange(len(payload))] = rng.choice((0, 255, 0x80, 1))
    else:
        return frame[:7] + frame[7:] + rng.randbytes(rng.randrange(1, 9))   # bytes after it
    size = len(payload) if rng.random() < 0.9 else size
    return struct.pack('>BHI', frame_type, channel, size) + bytes(payload) + b'\xce'


def mutate(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    """A copy of ``frames`` with one to three kinds of damage."""
    frames = list(frames)
    for _ in range(rng.randrange(1, 4)):
        # The handshake is damaged now and then; what follows it, mostly.
        i = rng.randrange(1, len(frames)) if rng.random() < 0.15 or len(frames) < 6 else (
            rng.randrange(5, len(frames)))
        what = rng.randrange(10)
        frame = frames[i]
        if what < 6 and len(frame) >= 8:
            frames[i] = _payload_edit(rng, frame)
        elif what == 6:
            del frames[i]
            if len(frames) < 2:
                break
        elif what == 7:
            frames.insert(i, frame)
        elif what == 8 and i + 1 < len(frames):
            frames[i], frames[i + 1] = frames[i + 1], frame
        elif len(frame) >= 8:
            frames[i] = frame[:1] + struct.pack('>H', rng.choice((0, 1, 2, 3, 65535))) + (
                frame[3:])
    return frames
