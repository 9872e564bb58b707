"""Benchmark (not a test): do big operations stall the other clients?

One event loop serves every client, so work proportional to one client's
data must yield in bounded slices.  Each case builds its data, then runs the
big operation while a witness client in another process does publish + get
round trips on a queue of its own; it prints one JSON line per case with the
time the operation took and the witness's worst wait during it (goal:
at most 100 ms; RabbitMQ 3.10 on this machine: 6.5 ms closing a channel that
holds 500,000 unacked messages, 0.84 s to deliver 10,000 messages to 10,000
consumers).

    python benchmarks/big_operations.py [--messages 500000] [--consumers 10000]
        [--queues 2000] [--only close,drop,purge,delete,consumers,recovery]

Cases: ``close``: channel.close with ``--messages`` unacked; ``drop``: the
same, the TCP connection dropped; ``purge``/``delete``: queue.purge and
queue.delete of a queue of ``--messages``; ``consumers``: ``--consumers``
consumers on one queue (basic.consume each, one message each, all cancelled
by closing their channel); ``recovery``: start-up with ``--queues`` durable
queues of 100 persistent messages each (the time until the port answers; no
witness can connect before).  Run it under ``flock /tmp/bench.lock``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import struct
import sys
import threading
import time
from pathlib import Path

import pika

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_alarm import Broker, Client, publishes  # noqa: E402

WATERMARK = 8 << 30          # the memory alarm must not get in the way
#: channel.close, reply 200, no text, no class or method.
CHANNEL_CLOSE = struct.pack('>HHH', 20, 40, 200) + b'\x00' + struct.pack('>HH', 0, 0)


def witness(port: int, ready: mp.Event, stop: mp.Event, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """publish + basic.get round trips until ``stop``: (wall time, wait) pairs."""
    conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
    ch = conn.channel()
    queue = ch.queue_declare('', exclusive=True).method.queue
    waits = []
    ready.set()
    while not stop.is_set():
        started = time.perf_counter()
        ch.basic_publish('', queue, b'ping')
        while ch.basic_get(queue, auto_ack=True)[0] is None:
            pass
        waits.append((time.time(), time.perf_counter() - started))
        time.sleep(0.002)
    conn.close()
    out.put(waits)


class Witness:
    def __init__(self, port: int) -> None:
        mp_ = mp.get_context('spawn')     # inherits none of the client sockets
        self.ready, self.stop, self.out = mp_.Event(), mp_.Event(), mp_.Queue()
        self.proc = mp_.Process(target=witness, args=(port, self.ready, self.stop, self.out))
        self.proc.start()
        self.ready.wait(30)

    def worst_between(self, start: float, end: float) -> float:
        """The longest round trip that overlapped [start, end], in ms."""
        self.stop.set()
        waits = self.out.get(timeout=60)
        self.proc.join(30)
        return round(max((wait for done, wait in waits if done >= start
                          and done - wait <= end), default=0.0) * 1000, 1)


def drain_socket(sock: socket.socket, stop: threading.Event) -> threading.Thread:
    """Read and discard what the broker sends (deliveries) until ``stop``."""
    def run() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                if not sock.recv(1 << 20):
                    return
            except TimeoutError:
                pass
            except OSError:
                return
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def message_count(port: int, queue: str) -> tuple[int, int]:
    conn = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', port))
    try:
        ok = conn.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count
    finally:
        conn.close()


def fill(client: Client, queue: str, messages: int) -> None:
    client.declare(queue)
    batch = publishes(queue, b'x' * 16, 1000)
    for _ in range(messages // 1000):
        client.sock.sendall(batch)
    client.declare(queue)      # the publishes before it are routed


def consume(client: Client, queue: str, channel: int = 1, tag: str = 'c') -> None:
    payload = (struct.pack('>HHH', 60, 20, 0) + bytes((len(queue),)) + queue.encode()
               + bytes((len(tag),)) + tag.encode() + b'\x00' + b'\x00\x00\x00\x00')
    client.send_method(channel, payload)


def wait_for(predicate, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f'the broker did not get there: {predicate.__doc__}')
        time.sleep(0.05)


def case_unacked(port: int, messages: int, how: str) -> dict:
    holder = Client(port)
    fill(holder, 'held', messages)
    stop = threading.Event()
    consume(holder, 'held')
    reader = drain_socket(holder.sock, stop)
    wait_for(lambda: message_count(port, 'held')[0] == 0)
    w = Witness(port)
    start = time.time()
    if how == 'close':
        holder.send_method(1, CHANNEL_CLOSE)     # the reader goes on reading
    else:
        stop.set()
        reader.join()
        holder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        holder.sock.close()
    wait_for(lambda: message_count(port, 'held')[0] == messages)
    end = time.time()
    stop.set()
    return dict(case=how, messages=messages, seconds=round(end - start, 2),
                witness_worst_ms=w.worst_between(start, end))


def case_queue(port: int, messages: int, how: str) -> dict:
    client = Client(port)
    fill(client, how, messages)
    w = Witness(port)
    start = time.time()
    if how == 'purge':
        client.send_method(1, struct.pack('>HHH', 50, 30, 0) + bytes((len(how),)) + how.encode()
                           + b'\x00')
        client.method(1, 50, 31)
    else:
        client.send_method(1, struct.pack('>HHH', 50, 40, 0) + bytes((len(how),)) + how.encode()
                           + b'\x00')
        client.method(1, 50, 41)
    end = time.time()
    return dict(case=how, messages=messages, seconds=round(end - start, 2),
                witness_worst_ms=w.worst_between(start, end))


def case_consumers(port: int, consumers: int) -> dict:
    client = Client(port)
    client.declare('many')
    w = Witness(port)
    start = time.time()
    stop = threading.Event()
    for i in range(consumers):
        consume(client, 'many', tag=f'c{i}')
    reader = drain_socket(client.sock, stop)
    wait_for(lambda: message_count(port, 'many')[1] == consumers)
    consumed = time.time()
    publisher = Client(port)
    publisher.sock.sendall(publishes('many', b'x' * 16, consumers))
    publisher.declare('many')
    wait_for(lambda: message_count(port, 'many')[0] == 0)
    delivered = time.time()
    stop.set()
    reader.join()
    client.send_method(1, CHANNEL_CLOSE)
    wait_for(lambda: message_count(port, 'many') == (consumers, 0))
    end = time.time()
    return dict(case='consumers', consumers=consumers,
                consume_seconds=round(consumed - start, 2),
                deliver_seconds=round(delivered - consumed, 2),
                cancel_seconds=round(end - delivered, 2),
                witness_worst_ms=w.worst_between(start, end))


def case_recovery(queues: int) -> dict:
    broker = Broker(WATERMARK)
    data = broker.dir
    try:
        client = Client(broker.port)
        for i in range(queues):
            name = f'r{i}'
            declare_durable = (struct.pack('>HHH', 50, 10, 0) + bytes((len(name),))
                               + name.encode() + b'\x02\x00\x00\x00\x00')
            client.send_method(1, declare_durable)
            client.method(1, 50, 11)
            client.sock.sendall(publishes(name, b'x' * 16, 100).replace(
                struct.pack('>HB', 0x1000, 1), struct.pack('>HB', 0x1000, 2)))
        client.send_method(1, declare_durable)
        client.method(1, 50, 11)
        client.sock.close()
        broker.proc.terminate()
        broker.proc.wait(60)
        started = time.time()
        broker = Broker(WATERMARK, data_dir=data)
        return dict(case='recovery', queues=queues, messages=queues * 100,
                    start_seconds=round(time.time() - started, 2))
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--messages', type=int, default=500_000)
    parser.add_argument('--consumers', type=int, default=10_000)
    parser.add_argument('--queues', type=int, default=2000)
    parser.add_argument('--only', default='close,drop,purge,delete,consumers,recovery')
    args = parser.parse_args()
    wanted = args.only.split(',')
    for name in ('close', 'drop', 'purge', 'delete', 'consumers'):
        if name not in wanted:
            continue
        broker = Broker(WATERMARK)
        try:
            if name in ('close', 'drop'):
                result = case_unacked(broker.port, args.messages, name)
            elif name == 'consumers':
                result = case_consumers(broker.port, args.consumers)
            else:
                result = case_queue(broker.port, args.messages, name)
        finally:
            broker.stop()
        print(json.dumps(result), flush=True)
    if 'recovery' in wanted:
        print(json.dumps(case_recovery(args.queues)), flush=True)


if __name__ == '__main__':
    main()
