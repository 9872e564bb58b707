"""connection.* methods from a client: the handshake, close, update-secret.

Each handler runs after the connection's state machine accepted the method
(:meth:`~..handshake.Handshake.receive_method`), so the state has already
moved on: these functions only check what the method carries and answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pamqp import commands

from leveret.protocol.constants import FRAME_MIN_SIZE
from leveret.protocol.errors import ConnectionAccessRefused, NotAllowed

from ...auth import AuthenticationError
from .. import limits
from ..logins import worth_logging

if TYPE_CHECKING:
    from ..handshake import Handshake

log = logging.getLogger(__name__)

Connection = commands.Connection


def start_ok(conn: 'Handshake', method: Connection.StartOk) -> None:
    conn.client_properties = method.client_properties or {}
    capabilities = conn.client_properties.get('capabilities')
    conn.capabilities = capabilities if isinstance(capabilities, dict) else {}
    mechanism = method.mechanism
    if mechanism not in conn.mechanisms():
        raise ConnectionAccessRefused(f"unsupported authentication mechanism '{mechanism}'")
    try:
        if mechanism == 'EXTERNAL':
            # The verified client certificate names the user (no password).
            assert conn.tls is not None and conn.tls.login is not None
            user = conn.sessions.users.authenticate_external(conn.tls.login,
                                                             conn.from_loopback())
        else:
            user = conn.sessions.users.authenticate(mechanism, method.response,
                                                    conn.from_loopback())
    except AuthenticationError as exc:
        conn.note_close(f'login refused: {exc}', logging.WARNING)
        address = conn.peer.rpartition(':')[0] or conn.peer
        count, delay = conn.sessions.login_failures.failed(address)
        if worth_logging(count):
            log.warning('%s: login refused (%s): %s; %d failed login%s from %s in a row, '
                        'answered after %.1f s', conn.peer, mechanism, exc, count,
                        '' if count == 1 else 's', address, delay)
        error = None
        if conn.client_capability('authentication_failure_close'):
            error = ConnectionAccessRefused(
                f'Login was refused using authentication mechanism {mechanism}. '
                f'For details see the broker logfile.')
        conn.refuse_login(error, delay)
        return
    conn.username = user.name
    conn.user = user
    conn.auth_mechanism = mechanism
    conn.send_method(0, Connection.Tune(channel_max=conn.channel_max, frame_max=conn.frame_max,
                                        heartbeat=conn.heartbeat))


def tune_ok(conn: 'Handshake', method: Connection.TuneOk) -> None:
    settings = conn.sessions.settings
    frame_max = method.frame_max or settings.frame_max
    if frame_max < FRAME_MIN_SIZE:
        raise NotAllowed(f'frame_max={frame_max} < {FRAME_MIN_SIZE} min size')
    if frame_max > settings.frame_max:
        raise NotAllowed(f'frame_max={frame_max} > {settings.frame_max} max size')
    conn.frame_max = frame_max
    # Fudge of 8 bytes, as RabbitMQ: some clients count the frame wrong.
    conn.reader.frame_max = frame_max + 8
    channel_max = method.channel_max or settings.channel_max
    conn.channel_max = min(channel_max, settings.channel_max)
    conn.heartbeat = method.heartbeat
    conn.tuned()


def open_(conn: 'Handshake', method: Connection.Open) -> None:
    name = method.virtual_host or '/'
    vhost = conn.sessions.vhosts.get(name)
    if vhost is None:
        raise NotAllowed(f"vhost {name} not found")
    assert conn.user is not None        # start-ok came first
    # RabbitMQ's order: the vhost's and the user's connection limits, then access.
    limits.check_connection(conn.sessions, conn.user, vhost)
    if not conn.sessions.users.may_open(conn.user.name, name):
        raise NotAllowed(f"access to vhost '{name}' refused for user '{conn.username}'")
    conn.vhost = vhost
    conn.sessions.vhost_opened(conn)
    conn.opened()
    conn.send_method(0, Connection.OpenOk())


def close(conn: 'Handshake', method: Connection.Close) -> None:
    """The client closes: answer close-ok, then drop the connection."""
    conn.note_close(f'closed by the client ({method.reply_code} {method.reply_text})'
                    if method.reply_code not in (0, 200) else 'closed by the client')
    conn.send_method(0, Connection.CloseOk())
    conn.closed_by_peer()


def close_ok(conn: 'Handshake', method: Connection.CloseOk) -> None:
    """close-ok for a close we never sent: the client is gone all the same."""
    conn.closed_by_peer()


def update_secret(conn: 'Handshake', method: Connection.UpdateSecret) -> None:
    conn.send_method(0, Connection.UpdateSecretOk())


def blocked(conn: 'Handshake', method: Connection.Blocked | Connection.Unblocked) -> None:
    """connection.blocked / unblocked are for servers to send: ignored."""
