"""The memory alarm bounds the broker's memory whatever the message shape:
many empty messages (their objects are counted, not just their bodies),
bodies still arriving, and what the counting misses (the resident memory is
watched).  A blocked publisher stays connected: its heartbeats are not read
while the broker holds its input, so they cannot be missed."""

from __future__ import annotations

import struct
import time

import pytest
from pamqp import commands as C

from ..processes import wait_until
from ..rawamqp import RawClient

WATERMARK = 32 << 20


def rss(pid: int) -> int:
    with open(f'/proc/{pid}/statm') as f:
        return int(f.read().split()[1]) * 4096


def publish_frames(queue: str, body: bytes, count: int) -> bytes:
    publish = (struct.pack('>BHI', 1, 1, 9 + len(queue)) + struct.pack('>HHH', 60, 40, 0)
               + b'\x00' + bytes((len(queue),)) + queue.encode() + b'\x00\xce')
    header = struct.pack('>BHI', 2, 1, 15) + struct.pack('>HHQHB', 60, 0, len(body), 0x1000, 1)
    content = header + b'\xce'
    if body:
        content += struct.pack('>BHI', 3, 1, len(body)) + body + b'\xce'
    return (publish + content) * count


def blocked(client: RawClient, timeout: float = 0.0) -> bool:
    """True once connection.blocked arrived (reads what is there, briefly)."""
    if BLOCKED in client.buf:
        return True
    client.sock.settimeout(timeout or 0.001)
    deadline = time.monotonic() + timeout
    try:
        while True:
            data = client.sock.recv(65536)
            if not data:
                return False
            client.buf += data
            if BLOCKED in client.buf:
                return True
            if time.monotonic() > deadline:
                return False
    except TimeoutError:
        return False


#: A connection.blocked method frame begins so (reason follows).
BLOCKED = b'\x00\x0a\x00\x3c'


@pytest.fixture
def small_broker(broker_factory):
    return broker_factory(extra_env={'LEVERET_MEMORY_HIGH_WATERMARK': str(WATERMARK)}).start()


def test_empty_messages_are_counted_by_what_they_cost(small_broker):
    start = rss(small_broker.proc.pid)
    with RawClient(small_broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue='empty'), C.Queue.DeclareOk)
        batch = publish_frames('empty', b'', 2000)
        sent = 0
        pending = memoryview(b'')
        while not blocked(client) and sent < 2_000_000:
            if not pending:
                pending = memoryview(batch)
                sent += 2000
            client.sock.settimeout(0.05)
            try:
                pending = pending[client.sock.send(pending):]
            except TimeoutError:
                pass                 # the broker stopped reading: blocked soon
        assert blocked(client, timeout=10), f'not blocked after {sent} messages'
        grown = rss(small_broker.proc.pid) - start
    # Bodies alone (0 bytes) would never have raised the alarm.
    assert grown < WATERMARK * 1.3, f'{grown >> 20} MiB grown for a {WATERMARK >> 20} MiB watermark'


def test_bodies_still_arriving_are_counted(small_broker):
    start = rss(small_broker.proc.pid)
    publishers = []
    size = 64 << 20                        # announced; half of it is sent
    chunk = b'x' * (128 << 10)
    for _i in range(4):
        client = RawClient(small_broker.port)
        client.handshake()
        client.open_channel(1)
        client.send(struct.pack('>BHI', 1, 1, 10) + struct.pack('>HHH', 60, 40, 0) + b'\x00'
                    + b'\x01q' + b'\x00\xce')
        client.send(struct.pack('>BHI', 2, 1, 14) + struct.pack('>HHQH', 60, 0, size, 0)
                    + b'\xce')
        client.sock.settimeout(0.2)
        publishers.append(client)
    frame = struct.pack('>BHI', 3, 1, len(chunk) - 8) + chunk[:-8] + b'\xce'
    pending = {client: 0 for client in publishers}    # bytes of the current frame sent
    frames = {client: 0 for client in publishers}
    while any(count < (size // 2) // len(frame) for count in frames.values()):
        for client in publishers:
            if frames[client] >= (size // 2) // len(frame):
                continue
            client.sock.settimeout(0.01)
            try:
                pending[client] += client.sock.send(frame[pending[client]:])
            except TimeoutError:     # the broker stopped reading it: blocked
                if all(blocked(c) for c in publishers):
                    break
                continue
            if pending[client] == len(frame):
                pending[client] = 0
                frames[client] += 1
        else:
            continue
        break
    wait_until(lambda: all(blocked(client) for client in publishers), timeout=10)
    grown = rss(small_broker.proc.pid) - start
    for client in publishers:
        client.close()
    # 128 MiB sent in all; the broker took a little more than the watermark.
    assert grown < WATERMARK * 1.5, f'{grown >> 20} MiB grown for a {WATERMARK >> 20} MiB watermark'


def test_a_blocked_publisher_is_not_dropped_for_missed_heartbeats(small_broker):
    with RawClient(small_broker.port) as client:
        client.handshake(heartbeat=1)
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue='big'), C.Queue.DeclareOk)
        client.publish(1, '', 'big', b'x' * (WATERMARK + (1 << 20)))
        client.publish(1, '', 'big', b'one more')          # finds the alarm on
        client.expect(C.Connection.Blocked, 0)
        # Heartbeats every second, from both sides; the broker reads none of
        # the client's while it holds the input.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            client.send(b'\x08\x00\x00\x00\x00\x00\x00\xce')
            time.sleep(0.5)
        assert not client.closed_by_server(timeout=0.5)
    assert 'missed heartbeats' not in small_broker.log()
