"""A consumer receives the Celery client's task message byte for byte.

The client publishes through a recording TCP proxy; a raw consumer reads the
delivery straight from the broker. The content header (property flags,
properties, the headers table with its value types) and the body must be the
very bytes the client sent: re-encoding a table risks type drift (int64 'L'
against int32 'I', void 'V', decimals, timestamps, nested tables and arrays).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pamqp import commands as C
from pamqp import header as pheader

from ..conftest import BrokerProcess
from ..rawamqp import RawClient
from .conftest import ProjectFactory
from .harness import CeleryProject

pytestmark = pytest.mark.celery

FRAME_METHOD, FRAME_HEADER, FRAME_BODY = 1, 2, 3
FRAME_END = 0xCE
BASIC_PUBLISH = struct.pack('>HH', 60, 40)
BASIC_DELIVER = struct.pack('>HH', 60, 60)


class RecordingProxy:
    """Forwards TCP connections to the broker and keeps what each client sent."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self.sent_by_clients: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f'amqp://guest:guest@127.0.0.1:{self.port}//'

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(('127.0.0.1', self.upstream_port))
            self._sockets += [client, upstream]
            record = bytearray()
            self.sent_by_clients.append(record)
            threading.Thread(target=self._pump, args=(client, upstream, record),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None),
                             daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        try:
            while data := source.recv(65536):
                if record is not None:
                    record += data   # recorded before the broker can see it
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            sock.close()


def split_frames(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, channel, payload) of each complete frame in ``data``."""
    offset = 0
    while offset + 7 <= len(data):
        kind, channel, size = struct.unpack_from('>BHI', data, offset)
        end = offset + 7 + size
        if end >= len(data):
            return
        assert data[end] == FRAME_END
        yield kind, channel, bytes(data[offset + 7:end])
        offset = end + 1


def shortstr_at(payload: bytes, offset: int) -> str:
    return payload[offset + 1:offset + 1 + payload[offset]].decode()


def published(stream: bytes, routing_key: str) -> list[tuple[bytes, bytes]]:
    """(content header payload, body) of each publish to ``routing_key`` in a client's stream."""
    assert stream.startswith(b'AMQP')
    found: list[tuple[bytes, bytes]] = []
    current: dict[int, list[bytes]] = {}   # channel -> [header payload, body parts...]
    for kind, channel, payload in split_frames(stream[8:]):
        if kind == FRAME_METHOD and payload[:4] == BASIC_PUBLISH:
            exchange_end = 6 + 1 + payload[6]   # class, method, reserved short, exchange
            if shortstr_at(payload, exchange_end) == routing_key:
                current[channel] = []
                found.append((b'', b''))
        elif kind == FRAME_HEADER and channel in current:
            current[channel].append(payload)
        elif kind == FRAME_BODY and channel in current:
            current[channel].append(payload)
            header, *parts = current[channel]
            body = b''.join(parts)
            if len(body) == struct.unpack_from('>Q', header, 4)[0]:
                found[-1] = (header, body)
                del current[channel]
    return found


def read_delivery(client: RawClient, timeout: float = 10.0) -> tuple[bytes, bytes]:
    """(content header payload, body) of the next basic.deliver, read from raw frames."""
    deadline = time.monotonic() + timeout
    header = b''
    parts: list[bytes] = []
    while True:
        frames = list(split_frames(client.buf))
        if frames:
            kind, _, payload = frames[0]
            client.buf = client.buf[7 + len(payload) + 1:]
            if kind == FRAME_METHOD:
                assert payload[:4] == BASIC_DELIVER, payload
            elif kind == FRAME_HEADER:
                header = payload
            elif kind == FRAME_BODY:
                parts.append(payload)
                if len(b''.join(parts)) == struct.unpack_from('>Q', header, 4)[0]:
                    return header, b''.join(parts)
            continue
        left = deadline - time.monotonic()
        assert left > 0, 'no delivery'
        client.buf += client.recv_bytes(left)


@pytest.fixture(scope='module')
def proxy(celery_broker: BrokerProcess) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(celery_broker.port)
    yield proxy
    proxy.close()


@pytest.fixture(scope='module')
def project(proxy: RecordingProxy, celery_project_factory: ProjectFactory) -> CeleryProject:
    # No worker: the test's own consumer takes the task messages.
    return celery_project_factory(proxy.url, task_default_queue='relay')


def consume_one(broker: BrokerProcess, queue: str) -> tuple[bytes, bytes]:
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.rpc(1, C.Basic.Consume(queue=queue, no_ack=True), C.Basic.ConsumeOk)
        return read_delivery(client)


def sent_by_client(proxy: RecordingProxy, queue: str) -> tuple[bytes, bytes]:
    (message,) = [m for stream in proxy.sent_by_clients
                  for m in published(bytes(stream), queue)]
    return message


@pytest.mark.parametrize('options', [
    pytest.param({}, id='defaults'),
    pytest.param({'priority': 3, 'expires': 60, 'countdown': 30}, id='priority-eta-expires'),
    pytest.param({'headers': {'int64': 2 ** 40, 'negative': -5, 'ratio': 0.25,
                              'nothing': None, 'yes': True, 'price': Decimal('12.50'),
                              'when': datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                              'list': [1, 'two', None, 3.5, [False]],
                              'table': {'nested': {'deep': [2 ** 33]}}}},
                 id='header-value-types'),
])
def test_the_task_message_is_delivered_exactly_as_the_client_sent_it(
        celery_broker: BrokerProcess, proxy: RecordingProxy, project: CeleryProject,
        unique_queue: str, options: dict) -> None:
    project.tasks.report.apply_async(('relay',), queue=unique_queue, **options)
    header, body = consume_one(celery_broker, unique_queue)
    assert (header, body) == sent_by_client(proxy, unique_queue)
    content = pheader.ContentHeader()
    content.unmarshal(header)
    assert content.properties.correlation_id is not None   # a Celery task message indeed
    for name in options.get('headers', {}):
        assert name in content.properties.headers
    assert b'relay' in body


def test_a_multi_frame_task_body_is_delivered_exactly_as_sent(
        celery_broker: BrokerProcess, proxy: RecordingProxy, project: CeleryProject,
        unique_queue: str) -> None:
    # Larger than one frame (frame_max 131072): sent and delivered in several frames.
    project.tasks.add.apply_async(('a' * 300_000, 'b'), queue=unique_queue)
    header, body = consume_one(celery_broker, unique_queue)
    assert (header, body) == sent_by_client(proxy, unique_queue)
    assert len(body) > 300_000
