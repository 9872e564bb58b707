"""A tiny blocking AMQP client over a raw socket, for tests that need to
send exactly the bytes they want (malformed input, handshake variants)."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from typing import Any

from pamqp import body as pbody
from pamqp import commands as C
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

PROTOCOL_HEADER = b'AMQP\x00\x00\x09\x01'
CAPABILITIES = {'authentication_failure_close': True, 'consumer_cancel_notify': True,
                'connection.blocked': True, 'basic.nack': True, 'publisher_confirms': True}


class Closed(Exception):
    """The server closed the socket."""


class RawClient:
    def __init__(self, port: int, host: str = '127.0.0.1', timeout: float = 5.0,
                 source: str | None = None, context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        self.sock = context.wrap_socket(sock, server_hostname=host) if context else sock
        self.buf = b''
        self.frame_max = 131072

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> 'RawClient':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- raw I/O ---
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_method(self, channel: int, method: Any) -> None:
        self.send(pframe.marshal(method, channel))

    def publish(self, channel: int, exchange: str, routing_key: str, body: bytes,
                properties: C.Basic.Properties | None = None, **kwargs: Any) -> None:
        frames = [pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                                 **kwargs), channel),
                  pframe.marshal(pheader.ContentHeader(0, len(body),
                                                       properties or C.Basic.Properties()),
                                 channel)]
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            frames.append(pframe.marshal(pbody.ContentBody(body[i:i + step]), channel))
        self.send(b''.join(frames))

    def recv_bytes(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        return data

    def read_raw_frame(self, timeout: float = 5.0) -> tuple[int, int, bytes]:
        """(frame type, channel, payload), nothing decoded: for content
        headers pamqp cannot decode (headers the broker relays as they came)."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 7:
                frame_type, channel, size = struct.unpack_from('>BHI', self.buf)
                if len(self.buf) >= size + 8:
                    payload = self.buf[7:7 + size]
                    self.buf = self.buf[size + 8:]
                    return frame_type, channel, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no frame from server')
            self.buf += self.recv_bytes(left)

    def send_content(self, channel: int, exchange: str, routing_key: str, header: bytes,
                     body: bytes) -> None:
        """basic.publish with ``header`` as the content-header payload, as is."""
        frames = [pframe.marshal(C.Basic.Publish(exchange=exchange, routing_key=routing_key),
                                 channel),
                  struct.pack('>BHI', 2, channel, len(header)) + header + b'\xce']
        if body:
            frames.append(struct.pack('>BHI', 3, channel, len(body)) + body + b'\xce')
        self.send(b''.join(frames))

    def read_frame(self, timeout: float = 5.0) -> tuple[int, Any]:
        """(channel, frame object); heartbeats are returned too."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 7:
                size = struct.unpack_from('>I', self.buf, 3)[0]
                if len(self.buf) >= size + 8:
                    consumed, channel, frame = pframe.unmarshal(self.buf)
                    self.buf = self.buf[consumed:]
                    return channel, frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no frame from server')
            self.buf += self.recv_bytes(left)

    def expect(self, kind: type, channel: int | None = None, timeout: float = 5.0) -> Any:
        """Read frames (skipping heartbeats) until one of type ``kind``."""
        while True:
            ch, frame = self.read_frame(timeout)
            if isinstance(frame, pheartbeat.Heartbeat):
                continue
            if not isinstance(frame, kind):
                raise AssertionError(f'expected {kind.__name__}, got {frame!r} on channel {ch}: '
                                     f'{dict(frame) if hasattr(frame, "__iter__") else ""}')
            if channel is not None:
                assert ch == channel, f'{kind.__name__} on channel {ch}, expected {channel}'
            return frame

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True once the server has closed the socket (reads until EOF)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.recv_bytes(deadline - time.monotonic())
            except Closed:
                return True
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True
        return False

    # --- handshake ---
    def handshake(self, user: str = 'guest', password: str = 'guest', vhost: str = '/',
                  heartbeat: int = 0, frame_max: int = 131072,
                  mechanism: str = 'PLAIN', capabilities: dict[str, Any] | None = None,
                  open_vhost: bool = True) -> C.Connection.Start:
        self.send(PROTOCOL_HEADER)
        start = self.expect(C.Connection.Start, 0)
        if mechanism == 'PLAIN':
            response = f'\0{user}\0{password}'
        else:
            from pamqp import encode
            response = encode.field_table({'LOGIN': user, 'PASSWORD': password})[4:].decode(
                'latin-1')
        self.send_method(0, C.Connection.StartOk(
            client_properties={'product': 'rawamqp',
                               'capabilities': CAPABILITIES if capabilities is None
                               else capabilities},
            mechanism=mechanism, response=response))
        if not open_vhost:
            return start
        tune = self.expect(C.Connection.Tune, 0)
        self.frame_max = min(frame_max, tune.frame_max)
        self.send_method(0, C.Connection.TuneOk(channel_max=tune.channel_max,
                                                frame_max=self.frame_max,
                                                heartbeat=heartbeat))
        self.send_method(0, C.Connection.Open(virtual_host=vhost))
        self.expect(C.Connection.OpenOk, 0)
        return start

    def open_channel(self, channel: int = 1) -> None:
        self.send_method(channel, C.Channel.Open())
        self.expect(C.Channel.OpenOk, channel)

    def rpc(self, channel: int, method: Any, reply: type, timeout: float = 5.0) -> Any:
        self.send_method(channel, method)
        return self.expect(reply, channel, timeout)
