"""A seeded mutator over valid frame sequences: whatever a client sends, the
broker answers (or closes) without a traceback in its log, keeps serving the
others, and a closed connection leaves nothing behind.

Each connection sends a valid conversation (handshake, channel, declarations
with arguments, binding, publishes with headers, consume, get, ack, nack,
cancel, close) with a few frames mutated: bytes flipped, a frame cut short,
random bytes inserted, a length field changed, a frame repeated or dropped.

``LEVERET_FUZZ_CONNECTIONS`` (default 240) and ``LEVERET_FUZZ_SEED`` set the
run's size and seed, for long runs: ``LEVERET_FUZZ_CONNECTIONS=20000
pytest tests/broker/test_fuzz.py``.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader

from ..helpers import pika_connection

CONNECTIONS = int(os.environ.get('LEVERET_FUZZ_CONNECTIONS', '240'))
SEED = int(os.environ.get('LEVERET_FUZZ_SEED', '14'))
#: Quick valid connections for the growth check, and what they may leave.
GROWTH_CONNECTIONS = 600
GROWTH_LIMIT = 768 << 10       # a leak of 2 KB per connection would be 1.2 MB
PROTOCOL_HEADER = b'AMQP\x00\x00\x09\x01'


def marshal(channel: int, method) -> bytes:  # type: ignore[no-untyped-def]
    return pframe.marshal(method, channel)


def conversation(rng: random.Random, n: int) -> list[bytes]:
    """The frames of a valid conversation after the protocol header."""
    queue = f'fuzz.{n % 7}'
    props = C.Basic.Properties(
        headers={'k': rng.choice([1, 'v', [1, 'a', None], {'n': {'m': 2.5}}, Decimal('1.5')]),
                 'x-list': [1, 2, 3]},
        delivery_mode=rng.choice([1, 2]), priority=rng.randint(0, 9),
        expiration=rng.choice([None, '0', '100000']), correlation_id='c')
    body = rng.randbytes(rng.randint(0, 300))
    frames = [
        marshal(0, C.Connection.StartOk(client_properties={'product': 'fuzz'},
                                        mechanism='PLAIN', response='\0guest\0guest')),
        marshal(0, C.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0)),
        marshal(0, C.Connection.Open(virtual_host='/')),
        marshal(1, C.Channel.Open()),
        marshal(1, C.Exchange.Declare(exchange='fuzz.x', exchange_type=rng.choice(
            ['topic', 'direct', 'headers', 'fanout']), arguments={'alternate-exchange': 'x'})),
        marshal(1, C.Queue.Declare(queue=queue, arguments={
            'x-max-length': rng.randint(1, 50), 'x-max-priority': rng.randint(0, 5),
            'x-message-ttl': rng.randint(0, 100000), 'x-dead-letter-exchange': 'fuzz.x'})),
        marshal(1, C.Queue.Bind(queue=queue, exchange='fuzz.x', routing_key='#.a.*',
                                arguments={'x-match': 'any', 'k': 1, 'b': [1, 'x']})),
        marshal(1, C.Basic.Qos(prefetch_count=rng.randint(0, 5))),
    ]
    for _ in range(rng.randint(1, 3)):
        frames += [marshal(1, C.Basic.Publish(exchange=rng.choice(['', 'fuzz.x']),
                                              routing_key=queue, mandatory=True)),
                   pframe.marshal(pheader.ContentHeader(0, len(body), props), 1),
                   pframe.marshal(pbody.ContentBody(body), 1)]
    frames += [
        marshal(1, C.Basic.Consume(queue=queue, consumer_tag='t')),
        marshal(1, C.Basic.Get(queue=queue)),
        marshal(1, C.Basic.Ack(delivery_tag=1)),
        marshal(1, C.Basic.Nack(delivery_tag=2, requeue=rng.random() < 0.5)),
        marshal(1, C.Basic.Cancel(consumer_tag='t')),
        marshal(1, C.Queue.Purge(queue=queue)),
        marshal(1, C.Channel.Close(reply_code=200, reply_text='', class_id=0, method_id=0)),
        marshal(0, C.Connection.Close(reply_code=200, reply_text='', class_id=0, method_id=0)),
    ]
    return frames


def mutate(rng: random.Random, frame: bytes) -> bytes:
    if len(frame) < 2:
        return rng.randbytes(rng.randint(1, 8))
    data = bytearray(frame)
    kind = rng.randrange(7)
    if kind == 0:                                   # flip bytes
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:                                 # cut short
        del data[rng.randrange(1, len(data)):]
    elif kind == 2:                                 # random bytes inserted
        at = rng.randrange(len(data))
        data[at:at] = rng.randbytes(rng.randint(1, 40))
    elif kind == 3 and len(data) > 7:               # another payload length
        struct.pack_into('>I', data, 3, rng.choice([0, 1, len(data), 2**31, 2**32 - 1]))
    elif kind == 4:                                 # repeated
        data += frame
    elif kind == 5:                                 # dropped
        return b''
    else:                                           # a byte of the payload's table area
        if len(data) > 12:
            at = rng.randrange(11, len(data) - 1)
            data[at] = rng.choice([0, 0xFF, ord('F'), ord('A'), ord('x'), ord('o')])
    return bytes(data)


def talk(port: int, n: int) -> None:
    rng = random.Random(SEED * 1_000_003 + n)
    frames = conversation(rng, n)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(frames))
        frames[at] = mutate(rng, frames[at])
    sock = socket.create_connection(('127.0.0.1', port), timeout=2)
    try:
        sock.sendall(PROTOCOL_HEADER if rng.random() < 0.97 else rng.randbytes(8))
        sock.recv(65536)                            # connection.start
        sock.sendall(b''.join(frames))
        sock.settimeout(0.5)
        while sock.recv(65536):                     # until the broker closes
            pass
    except OSError:
        pass                                        # a reset, or silence: fine
    finally:
        sock.close()


def resident(pid: int) -> int:
    with open(f'/proc/{pid}/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def quick_connection(port: int) -> None:
    sock = socket.create_connection(('127.0.0.1', port), timeout=5)
    try:
        sock.sendall(PROTOCOL_HEADER)
        sock.recv(65536)
        sock.sendall(b''.join(marshal(0, m) for m in (
            C.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                 response='\0guest\0guest'),
            C.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0),
            C.Connection.Open(virtual_host='/'))) + marshal(1, C.Channel.Open())
            + marshal(1, C.Queue.Declare(queue='', exclusive=True))
            + marshal(0, C.Connection.Close(reply_code=200, reply_text='', class_id=0,
                                            method_id=0)))
        while sock.recv(65536):
            pass
    finally:
        sock.close()


@pytest.fixture(scope='module')
def fuzzed(tmp_path_factory):
    from ..conftest import BrokerProcess

    base = tmp_path_factory.mktemp('fuzz')
    proc = BrokerProcess(base / 'data', base / 'broker.log').start()
    yield proc
    proc.kill()


def test_mutated_conversations_leave_no_traceback_and_the_broker_serving(fuzzed):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: talk(fuzzed.port, n), range(CONNECTIONS)))
    with pika_connection(fuzzed.url) as conn:          # still serving
        ch = conn.channel()
        ch.queue_declare('fuzz.after')
        ch.basic_publish('', 'fuzz.after', b'ok')
        assert ch.basic_get('fuzz.after', auto_ack=True)[2] == b'ok'
    log = fuzzed.log()
    assert 'FRAME_ERROR' in log                         # the mutations reached it
    assert 'Traceback' not in log, log[log.index('Traceback') - 2000:][:6000]
    assert fuzzed.proc.poll() is None


def test_closed_connections_leave_nothing_behind(fuzzed):
    pid = fuzzed.proc.pid
    with ThreadPoolExecutor(4) as pool:                  # warm up: pools, arenas, caches
        list(pool.map(lambda _: quick_connection(fuzzed.port), range(200)))
    before = resident(pid)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: quick_connection(fuzzed.port), range(GROWTH_CONNECTIONS)))
    grown = resident(pid) - before
    assert grown < GROWTH_LIMIT, f'{grown >> 10} KiB more after {GROWTH_CONNECTIONS} connections'
