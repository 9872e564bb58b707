"""Does the memory alarm bound the broker's memory, whatever the message shape?

    python benchmarks/memory_alarm.py [--watermark-mb 300] [--only empty,half,1k]

Each probe starts a broker on a fresh data directory with
``memory_high_watermark`` set, publishes as fast as it can until the
broker sends ``connection.blocked`` (or everything is sent), then watches
the broker's resident memory for a few more seconds:

* ``empty``: 3,000,000 empty messages from one connection;
* ``half``: 20 connections each announce a 100 MiB message and send half
  of its body;
* ``1k``: 1 KiB messages from one connection.

It prints one JSON line per probe: messages (or bytes) taken, the RSS at
start, when ``connection.blocked`` arrived and the most seen after, in MiB,
and the peak over the watermark plus the RSS at start.  A benchmark, not a
test: run it on a quiet machine (``flock /tmp/bench.lock``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leveret.protocol.fieldtable import encode_table

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a probe may publish before it gives up waiting for the alarm.
PROBE_LIMIT = 120.0
BLOCKED = b'\x00\x0a\x00\x3c'


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.buf = b''
        self.sock.sendall(b'AMQP\x00\x00\x09\x01')
        self.method(0, 10, 10)
        response = b'\x00guest\x00guest'
        properties = encode_table({'capabilities': {'connection.blocked': True}})
        self.send_method(0, struct.pack('>HH', 10, 11) + properties + b'\x05PLAIN'
                         + struct.pack('>I', len(response)) + response + b'\x05en_US')
        self.method(0, 10, 30)
        self.send_method(0, struct.pack('>HHHIH', 10, 31, 2047, 131072, 0))
        self.send_method(0, struct.pack('>HH', 10, 40) + b'\x01/\x00\x00')
        self.method(0, 10, 41)
        self.send_method(1, struct.pack('>HH', 20, 10) + b'\x00')
        self.method(1, 20, 11)

    def send_method(self, channel: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack('>BHI', 1, channel, len(payload)) + payload + b'\xce')

    def method(self, channel: int, class_id: int, method_id: int) -> bytes:
        while True:
            while len(self.buf) < 7 or len(self.buf) < 8 + struct.unpack_from('>I', self.buf, 3)[0]:
                self.buf += self.sock.recv(65536)
            kind, ch, size = struct.unpack_from('>BHI', self.buf)
            payload = self.buf[7:7 + size]
            self.buf = self.buf[8 + size:]
            if kind == 1 and ch == channel and payload[:4] == struct.pack('>HH', class_id,
                                                                          method_id):
                return payload

    def declare(self, queue: str) -> None:
        self.send_method(1, struct.pack('>HHH', 50, 10, 0) + bytes((len(queue),))
                         + queue.encode() + b'\x00\x00\x00\x00\x00')
        self.method(1, 50, 11)

    def blocked(self, timeout: float = 0.001) -> bool:
        if BLOCKED in self.buf:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
            self.buf += data
        except (TimeoutError, BlockingIOError):
            pass
        return BLOCKED in self.buf


def publishes(queue: str, body: bytes, count: int) -> bytes:
    method = (struct.pack('>HHH', 60, 40, 0) + b'\x00' + bytes((len(queue),)) + queue.encode()
              + b'\x00')
    header = struct.pack('>HHQHB', 60, 0, len(body), 0x1000, 1)
    one = (struct.pack('>BHI', 1, 1, len(method)) + method + b'\xce'
           + struct.pack('>BHI', 2, 1, len(header)) + header + b'\xce')
    if body:
        one += struct.pack('>BHI', 3, 1, len(body)) + body + b'\xce'
    return one * count


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/statm') as f:
        return int(f.read().split()[1]) * 4096 / (1 << 20)


class Broker:
    def __init__(self, watermark: int, data_dir: Path | None = None) -> None:
        """A broker on a fresh data directory (or on ``data_dir``'s, again)."""
        self.dir = data_dir or Path(tempfile.mkdtemp(prefix='leveret-mem-'))
        self.log = open(self.dir / 'broker.log', 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'leveret', 'broker', '--port', '0', '--data-dir',
             str(self.dir / 'data')], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={'LEVERET_MEMORY_HIGH_WATERMARK': str(watermark), 'PATH': '/usr/bin:/bin',
                 'LEVERET_MANAGEMENT_ENABLED': 'false', 'LEVERET_PROMETHEUS_ENABLED': 'false'})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(rb'listening on [^\s]+:(\d+)', (self.dir / 'broker.log').read_bytes())
            if found:
                self.port = int(found[1])
                return
            time.sleep(0.05)
        raise RuntimeError('broker did not start')

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def send_until_blocked(client: Client, batch: bytes, per_batch: int, limit: int,
                       pid: int, peak: list[float]) -> int:
    sent = 0
    pending = memoryview(b'')
    client.sock.settimeout(0.05)
    give_up = time.monotonic() + PROBE_LIMIT
    while not client.blocked() and sent < limit and time.monotonic() < give_up:
        if not pending:
            pending = memoryview(batch)
            sent += per_batch
            peak[0] = max(peak[0], rss_mb(pid))
        try:
            pending = pending[client.sock.send(pending):]
        except (TimeoutError, BlockingIOError):
            pass
    return sent


def watch(pid: int, seconds: float, peak: list[float]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak[0] = max(peak[0], rss_mb(pid))
        time.sleep(0.05)


def probe_messages(watermark: int, body: bytes, limit: int, label: str) -> dict:
    broker = Broker(watermark)
    try:
        pid = broker.proc.pid
        start = rss_mb(pid)
        client = Client(broker.port)
        client.declare('probe')
        peak = [start]
        sent = send_until_blocked(client, publishes('probe', body, 1000), 1000, limit, pid, peak)
        blocked = client.blocked(timeout=5)
        at_block = rss_mb(pid)
        watch(pid, 3, peak)
        return dict(probe=label, sent=sent, blocked=blocked, rss_start_mb=round(start, 1),
                    rss_at_block_mb=round(at_block, 1), rss_peak_mb=round(peak[0], 1),
                    peak_over_watermark_and_start=round(
                        peak[0] / (watermark / (1 << 20) + start), 3))
    finally:
        broker.stop()


def probe_half_sent(watermark: int, connections: int = 20, size: int = 100 << 20) -> dict:
    broker = Broker(watermark)
    try:
        pid = broker.proc.pid
        start = rss_mb(pid)
        clients = []
        for _ in range(connections):
            client = Client(broker.port)
            method = struct.pack('>HHH', 60, 40, 0) + b'\x00\x01q\x00'
            header = struct.pack('>HHQH', 60, 0, size, 0)
            client.sock.sendall(struct.pack('>BHI', 1, 1, len(method)) + method + b'\xce'
                                + struct.pack('>BHI', 2, 1, len(header)) + header + b'\xce')
            clients.append(client)
        chunk = b'x' * (131072 - 8)
        frame = memoryview(struct.pack('>BHI', 3, 1, len(chunk)) + chunk + b'\xce')
        frames = (size // 2) // len(chunk)
        left = {client: frames for client in clients}
        offset = {client: 0 for client in clients}
        peak = [start]
        give_up = time.monotonic() + PROBE_LIMIT
        while (any(left.values()) and not all(c.blocked() for c in clients)
               and time.monotonic() < give_up):
            for client in clients:
                if not left[client]:
                    continue
                client.sock.settimeout(0.002)
                try:
                    offset[client] += client.sock.send(frame[offset[client]:])
                except (TimeoutError, BlockingIOError):
                    continue
                if offset[client] == len(frame):
                    offset[client] = 0
                    left[client] -= 1
            peak[0] = max(peak[0], rss_mb(pid))
        blocked = sum(c.blocked(timeout=0.2) for c in clients)
        at_block = rss_mb(pid)
        watch(pid, 3, peak)
        sent_mb = sum(frames - left[c] for c in clients) * len(chunk) / (1 << 20)
        return dict(probe='half', sent_mb=round(sent_mb), blocked_connections=blocked,
                    rss_start_mb=round(start, 1), rss_at_block_mb=round(at_block, 1),
                    rss_peak_mb=round(peak[0], 1),
                    peak_over_watermark_and_start=round(
                        peak[0] / (watermark / (1 << 20) + start), 3))
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--watermark-mb', type=int, default=300)
    parser.add_argument('--only', default='empty,half,1k')
    args = parser.parse_args()
    watermark = args.watermark_mb << 20
    wanted = args.only.split(',')
    if 'empty' in wanted:
        print(json.dumps(probe_messages(watermark, b'', 3_000_000, 'empty')), flush=True)
    if 'half' in wanted:
        print(json.dumps(probe_half_sent(watermark)), flush=True)
    if '1k' in wanted:
        print(json.dumps(probe_messages(watermark, b'x' * 1024, 3_000_000, '1k')), flush=True)


if __name__ == '__main__':
    main()
