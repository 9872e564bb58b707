"""How long do N persistent messages take to come back after a crash?

    python benchmarks/recovery_time.py [--messages 1000000] [--size 16]

Starts a broker on a fresh data directory, publishes N persistent messages
of SIZE bytes into a durable queue with publisher confirms, kills the broker
with SIGKILL, starts it again and reports:

* ``listening_s``: from process start until it accepts connections (the
  log is replayed before the port opens);
* ``deliverable_s``: from process start until a client has connected, seen
  all N messages with queue.declare(passive) and received the first one.

A benchmark, not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pamqp import commands as C
from pamqp import frame as pframe
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

ROOT = Path(__file__).resolve().parent.parent


class Client:
    """Just enough blocking AMQP to publish with confirms and to get."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.buf = b''
        self.sock.sendall(b'AMQP\x00\x00\x09\x01')
        self.read(C.Connection.Start)
        self.send(0, C.Connection.StartOk(client_properties={}, mechanism='PLAIN',
                                          response='\0guest\0guest'))
        tune = self.read(C.Connection.Tune)
        self.send(0, C.Connection.TuneOk(channel_max=tune.channel_max,
                                         frame_max=tune.frame_max, heartbeat=0))
        self.send(0, C.Connection.Open(virtual_host='/'))
        self.read(C.Connection.OpenOk)
        self.send(1, C.Channel.Open())
        self.read(C.Channel.OpenOk)

    def send(self, channel: int, method: object) -> None:
        self.sock.sendall(pframe.marshal(method, channel))

    def frame(self) -> object:
        while True:
            if len(self.buf) >= 7:
                size = struct.unpack_from('>I', self.buf, 3)[0]
                if len(self.buf) >= size + 8:
                    used, _, value = pframe.unmarshal(self.buf)
                    self.buf = self.buf[used:]
                    return value
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError('closed')
            self.buf += data

    def read(self, kind: type) -> object:
        while True:
            value = self.frame()
            if isinstance(value, kind):
                return value


def start_broker(data_dir: Path, log: Path) -> tuple[subprocess.Popen, int, float]:
    started = time.monotonic()
    out = open(log, 'ab')
    offset = out.tell()
    proc = subprocess.Popen([sys.executable, '-m', 'leveret', 'broker', '--port', '0',
                             '--prometheus-port', '0', '--data-dir', str(data_dir)],
                            cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT)
    while True:
        with open(log, 'rb') as f:
            f.seek(offset)
            found = re.search(rb'listening on [^\s]+:(\d+)', f.read())
        if found:
            return proc, int(found.group(1)), started
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.005)


def publish(port: int, count: int, size: int) -> None:
    client = Client(port)
    client.send(1, C.Queue.Declare(queue='recovery', durable=True))
    client.read(C.Queue.DeclareOk)
    client.send(1, C.Confirm.Select())
    client.read(C.Confirm.SelectOk)
    one = (pframe.marshal(C.Basic.Publish(exchange='', routing_key='recovery'), 1)
           + pframe.marshal(ContentHeader(0, size, C.Basic.Properties(delivery_mode=2)), 1)
           + pframe.marshal(ContentBody(b'x' * size), 1))
    sent = confirmed = 0
    window, batch = 20000, 1000
    while confirmed < count:
        while sent < count and sent - confirmed < window:
            n = min(batch, count - sent)
            client.sock.sendall(one * n)
            sent += n
        ack = client.read(C.Basic.Ack)
        confirmed = max(confirmed, ack.delivery_tag)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--messages', type=int, default=1_000_000)
    parser.add_argument('--size', type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='leveret-recovery-'))
    try:
        data, log = work / 'data', work / 'broker.log'
        proc, port, _ = start_broker(data, log)
        t0 = time.monotonic()
        publish(port, args.messages, args.size)
        publish_s = time.monotonic() - t0
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        disk = sum(p.stat().st_size for p in (data / 'messages').glob('*.seg'))
        proc, port, started = start_broker(data, log)
        listening_s = time.monotonic() - started
        client = Client(port)
        client.send(1, C.Queue.Declare(queue='recovery', durable=True, passive=True))
        ok = client.read(C.Queue.DeclareOk)
        client.send(1, C.Basic.Get(queue='recovery', no_ack=False))
        client.read(C.Basic.GetOk)
        deliverable_s = time.monotonic() - started
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        recovered_line = next((line for line in log.read_text().splitlines()
                               if 'recovered' in line), '')
        print(json.dumps({
            'messages': args.messages, 'size': args.size, 'recovered': ok.message_count,
            'publish_s': round(publish_s, 2), 'log_bytes': disk,
            'listening_s': round(listening_s, 2), 'deliverable_s': round(deliverable_s, 2),
            'broker_log': recovered_line.split(': ', 1)[-1]}))
        return 0 if ok.message_count == args.messages else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
