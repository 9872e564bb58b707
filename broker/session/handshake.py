"""The connection's state machine and its handshake, sans-IO.

:class:`Handshake` owns the connection's state (the sentinels and the
transition table of :mod:`leveret.protocol.states`): every change of state
goes through :meth:`Handshake._to`, the only place that assigns it.  It
checks the protocol header, sends connection.start and dispatches every
channel-0 method through the table: a method the current state does not
accept raises RabbitMQ's error for it, otherwise the state moves and the
method's handler (``methods/connection.py``) runs.

It touches no socket and no event loop: what it needs of the connection it
is a part of is :meth:`send_method` and three hooks (the login was refused,
the connection is tuned, it is open).  ``tests/protocol/test_handshake.py``
drives it with bytes and reads the methods it sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pamqp import commands as C

from leveret.protocol.constants import FRAME_MIN_SIZE, PROTOCOL_HEADER, PROTOCOL_HEADER_0_9
from leveret.protocol.errors import AMQPError, ChannelErrorCode, CommandInvalid
from leveret.protocol.frames import FrameReader
from leveret.protocol.states import (
    AWAIT_HEADER,
    CONNECTION,
    EXPECTED,
    EventKey,
    State,
    transition,
)
from leveret.protocol.states import (
    PROTOCOL_HEADER as HEADER_RECEIVED,
)

from ..auth import MECHANISMS, User
from ..tls import TlsSession
from .methods import CONNECTION_METHODS

if TYPE_CHECKING:
    from ..model.vhost import VirtualHost
    from .registry import Sessions

log = logging.getLogger(__name__)


class BadProtocolHeader(Exception):
    """The peer does not speak AMQP 0-9-1: answer with our header and close."""


class Handshake:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        settings = sessions.settings
        self.state: State = AWAIT_HEADER
        self.peer = '?'
        #: The address it came in on (``host:port`` of the listener).
        self.listener = '?'
        self.started_at = time.monotonic()
        #: Why the connection ends, and the log level that says so: the
        #: first reason noted wins (a login refused, then the 403 it causes).
        self.close_reason: tuple[str, int] | None = None
        #: Frames in; frame_max grows to the negotiated size at tune-ok.
        self.reader = FrameReader(FRAME_MIN_SIZE)
        self._header_buf = b''
        # --- what the handshake negotiates ---
        self.client_properties: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        self.username = ''
        self.auth_mechanism = ''
        #: A TLS connection's protocol, cipher and peer certificate (None: plain).
        self.tls: TlsSession | None = None
        self.user: User | None = None
        self.vhost: VirtualHost = None  # type: ignore[assignment]  # set by connection.open
        #: Counted in the vhost's and the user's open connections (the limits).
        self.counted_open = False
        self.channel_max = settings.channel_max
        self.frame_max = settings.frame_max
        self.heartbeat = settings.heartbeat

    # --- what the connection provides ----------------------------------------
    #: Queue a method frame for the peer (the connection's ``Output``).
    send_method: Callable[[int, Any], None]

    def login_refused(self) -> None:
        """A failed login the client cannot be told about: drop the connection."""
        raise NotImplementedError

    def refuse_login(self, error: AMQPError | None, delay: float) -> None:
        """Refuse a failed login: close with ``error`` (for a client that can
        hear it) or drop the connection.  The connection does it after
        ``delay`` seconds (:mod:`.logins`); without I/O, at once."""
        if error is not None:
            raise error
        self.login_refused()

    def tuned(self) -> None:
        """tune-ok accepted: heartbeats start."""

    def opened(self) -> None:
        """connection.open accepted: the handshake is over."""

    def closed_by_peer(self) -> None:
        """The client closed (close, or close-ok for a close we never sent)."""
        raise NotImplementedError

    def note_close(self, reason: str, level: int = logging.INFO) -> None:
        """Record why the connection ends, for its closing log line."""
        if self.close_reason is None:
            self.close_reason = (reason, level)

    # --- the state machine ----------------------------------------------------
    def _to(self, event: EventKey) -> State:
        """Move to the state ``event`` leads to (the only writer of ``state``)."""
        self.state = transition(CONNECTION, self.state, event)
        return self.state

    def receive_header(self, data: bytes) -> bytes:
        """Check the 8-byte protocol header; return the bytes after it.

        Returns ``b''`` while the header is incomplete; raises
        :class:`BadProtocolHeader` for anything but AMQP 0-9-1 (0-9 is
        taken as 0-9-1, as RabbitMQ does).  A good header is answered with
        connection.start.
        """
        buf = self._header_buf + data
        if len(buf) < 8:
            if PROTOCOL_HEADER.startswith(buf) or PROTOCOL_HEADER_0_9.startswith(buf):
                self._header_buf = buf
                return b''
        if buf[:8] not in (PROTOCOL_HEADER, PROTOCOL_HEADER_0_9):
            if buf[:2] == b'\x16\x03':
                self.note_close('TLS handshake on a plain AMQP listener (use the TLS port)',
                                logging.WARNING)
            else:
                self.note_close(f'unsupported protocol header {buf[:8]!r}', logging.WARNING)
            raise BadProtocolHeader(buf[:8])
        self._header_buf = b''
        self._to(HEADER_RECEIVED)
        self.send_method(0, C.Connection.Start(
            version_major=0, version_minor=9,
            server_properties=self.sessions.server_properties,
            mechanisms=' '.join(self.mechanisms()), locales='en_US'))
        return buf[8:]

    def mechanisms(self) -> tuple[str, ...]:
        """PLAIN and AMQPLAIN; EXTERNAL too on a TLS connection whose client
        certificate was verified (never on a plain one)."""
        if (self.tls is not None and self.tls.login is not None
                and self.sessions.settings.tls_external_auth):
            return (*MECHANISMS, 'EXTERNAL')
        return MECHANISMS

    def receive_method(self, method: Any) -> None:
        """A method on channel 0 (the connection is not closing)."""
        event = type(method)
        if event not in CONNECTION[self.state]:
            raise self._unexpected(method)
        self._to(event)
        CONNECTION_METHODS[method.index](self, method)

    def _unexpected(self, method: Any) -> AMQPError:
        """RabbitMQ's error for a channel-0 method the state does not accept."""
        expected = EXPECTED.get(self.state)
        if expected is not None:
            return CommandInvalid(
                f"expected '{expected.name.lower()}', got '{method.name.lower()}'")
        if method.index >> 16 == 10:
            return CommandInvalid(f"unexpected '{method.name.lower()}'")
        return ChannelErrorCode('unexpected method in connection state running')

    # --- what the handshake found out -----------------------------------------
    def client_capability(self, name: str) -> bool:
        return bool(self.capabilities.get(name))

    def from_loopback(self) -> bool:
        return self.peer.startswith(('127.', '::1', '::ffff:127.'))
