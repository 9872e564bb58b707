"""Connection and channel states, and the transitions between them, as data.

Modelled on h11's ``_state.py``: everything that moves a connection or a
channel from one state to another is listed here, and nothing else may
move it.  States are sentinels (their ``repr`` is their name); an event is
a pamqp method class received from the peer, or one of the sentinels
below for what happens on our side.  A pair missing from a table is an
illegal event: :func:`transition` raises :class:`IllegalTransition` and the
state is left as it was.

This module knows no roles' behaviour, only the shape of the protocol: what
a server does in each state (authenticate on start-ok, ...) belongs to the
broker's session layer, which owns the state and is the only thing that
calls :func:`transition` for it.
"""

from __future__ import annotations

from pamqp import commands as C
from pamqp.base import Frame


class Sentinel:
    """A named, unique marker; compared by identity."""

    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


class State(Sentinel):
    """A state of a connection or a channel."""


class Event(Sentinel):
    """Something on our side that moves a state (received methods are
    events by their pamqp class)."""


EventKey = type | Event

# --- connection states, in handshake order ---------------------------------
AWAIT_HEADER = State('AWAIT_HEADER')        # before the 8-byte protocol header
AWAIT_START_OK = State('AWAIT_START_OK')    # connection.start sent
AWAIT_TUNE_OK = State('AWAIT_TUNE_OK')      # connection.tune sent
AWAIT_OPEN = State('AWAIT_OPEN')            # tuned, waiting for connection.open
RUNNING = State('RUNNING')                  # open: channels may be used
CLOSING = State('CLOSING')                  # we sent connection.close: wait for close-ok
CLOSED = State('CLOSED')                    # the transport is closed or closing

# --- channel states ----------------------------------------------------------
OPEN = State('OPEN')
CHANNEL_CLOSING = State('CHANNEL_CLOSING')  # we sent channel.close: wait for close-ok
CHANNEL_CLOSED = State('CHANNEL_CLOSED')    # released; dropped by the connection

# --- events of our own --------------------------------------------------------
PROTOCOL_HEADER = Event('PROTOCOL_HEADER')  # a valid protocol header arrived
SEND_CLOSE = Event('SEND_CLOSE')            # we close (an error, a shutdown)
DISCONNECT = Event('DISCONNECT')            # the transport closes or is lost
RELEASE = Event('RELEASE')                  # a channel's connection went away

#: connection state -> {event: next state}.  In a handshake state exactly
#: one method is expected (:data:`EXPECTED`); in CLOSING only close and
#: close-ok are looked at (the session drops everything else unread).
CONNECTION: dict[State, dict[EventKey, State]] = {
    AWAIT_HEADER: {
        PROTOCOL_HEADER: AWAIT_START_OK,
        DISCONNECT: CLOSED,
    },
    AWAIT_START_OK: {
        C.Connection.StartOk: AWAIT_TUNE_OK,
        SEND_CLOSE: CLOSING,
        DISCONNECT: CLOSED,
    },
    AWAIT_TUNE_OK: {
        C.Connection.TuneOk: AWAIT_OPEN,
        SEND_CLOSE: CLOSING,
        DISCONNECT: CLOSED,
    },
    AWAIT_OPEN: {
        C.Connection.Open: RUNNING,
        SEND_CLOSE: CLOSING,
        DISCONNECT: CLOSED,
    },
    RUNNING: {
        C.Connection.Close: CLOSED,          # answered with close-ok
        C.Connection.CloseOk: CLOSED,        # for a close we never sent
        C.Connection.UpdateSecret: RUNNING,
        C.Connection.Blocked: RUNNING,       # only servers send these: ignored
        C.Connection.Unblocked: RUNNING,
        SEND_CLOSE: CLOSING,
        DISCONNECT: CLOSED,
    },
    CLOSING: {
        C.Connection.Close: CLOSED,
        C.Connection.CloseOk: CLOSED,
        DISCONNECT: CLOSED,
    },
    CLOSED: {
        DISCONNECT: CLOSED,
    },
}

#: The one method each handshake state accepts (as in :data:`CONNECTION`).
EXPECTED: dict[State, type[Frame]] = {
    AWAIT_START_OK: C.Connection.StartOk,
    AWAIT_TUNE_OK: C.Connection.TuneOk,
    AWAIT_OPEN: C.Connection.Open,
}

#: The handshake states: channels cannot be used yet.
HANDSHAKE = frozenset((AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN))

#: channel state -> {event: next state}.  An open channel takes every
#: method; a closing one only close and close-ok (the rest is dropped).
CHANNEL: dict[State, dict[EventKey, State]] = {
    OPEN: {
        C.Channel.Close: CHANNEL_CLOSED,     # answered with close-ok
        SEND_CLOSE: CHANNEL_CLOSING,
        RELEASE: CHANNEL_CLOSED,
    },
    CHANNEL_CLOSING: {
        C.Channel.CloseOk: CHANNEL_CLOSED,
        C.Channel.Close: CHANNEL_CLOSED,     # both sides closed at once
        RELEASE: CHANNEL_CLOSING,
    },
    CHANNEL_CLOSED: {
        RELEASE: CHANNEL_CLOSED,
    },
}


class IllegalTransition(Exception):
    """An event that the current state does not accept."""

    def __init__(self, state: State, event: EventKey) -> None:
        name = event.__name__ if isinstance(event, type) else repr(event)
        super().__init__(f"can't handle {name} in state {state!r}")
        self.state = state
        self.event = event


def transition(table: dict[State, dict[EventKey, State]], state: State,
               event: EventKey) -> State:
    """The state after ``event`` in ``state``; :class:`IllegalTransition` if
    ``table`` has no such pair."""
    try:
        return table[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None
