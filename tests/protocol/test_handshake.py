"""The connection's state machine: the transition tables, and the handshake
driven without a socket, bytes in and methods out."""

from __future__ import annotations

from typing import Any

import pytest
from pamqp import commands as C
from pamqp import frame as pframe

from leveret.broker.auth import Users
from leveret.broker.config import Settings
from leveret.broker.model.clock import ManualClock
from leveret.broker.model.vhost import VirtualHost
from leveret.broker.session.handshake import BadProtocolHeader, Handshake
from leveret.broker.session.registry import Sessions
from leveret.broker.store.memory import MemoryStore
from leveret.protocol import states
from leveret.protocol.constants import FRAME_METHOD, PROTOCOL_HEADER
from leveret.protocol.errors import (
    ChannelErrorCode,
    CommandInvalid,
    ConnectionAccessRefused,
    NotAllowed,
)
from leveret.protocol.methods import decode_method
from leveret.protocol.states import (
    AWAIT_HEADER,
    AWAIT_OPEN,
    AWAIT_START_OK,
    AWAIT_TUNE_OK,
    CLOSED,
    CLOSING,
    RUNNING,
)

# --- the tables ----------------------------------------------------------------


def test_the_handshake_moves_through_the_states_in_order():
    state = AWAIT_HEADER
    for event, expected in ((states.PROTOCOL_HEADER, AWAIT_START_OK),
                            (C.Connection.StartOk, AWAIT_TUNE_OK),
                            (C.Connection.TuneOk, AWAIT_OPEN),
                            (C.Connection.Open, RUNNING),
                            (states.SEND_CLOSE, CLOSING),
                            (C.Connection.CloseOk, CLOSED)):
        state = states.transition(states.CONNECTION, state, event)
        assert state is expected


@pytest.mark.parametrize('state', [AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN])
def test_a_handshake_state_accepts_exactly_its_expected_method(state):
    methods = {event for event in states.CONNECTION[state] if isinstance(event, type)}
    assert methods == {states.EXPECTED[state]}


def test_an_illegal_event_raises_and_names_the_state():
    with pytest.raises(states.IllegalTransition, match="can't handle Open in state "
                                                       "AWAIT_START_OK"):
        states.transition(states.CONNECTION, AWAIT_START_OK, C.Connection.Open)
    with pytest.raises(states.IllegalTransition):
        states.transition(states.CHANNEL, states.CHANNEL_CLOSED, C.Channel.Close)


def test_every_state_can_lose_its_transport():
    for state in states.CONNECTION:
        assert states.transition(states.CONNECTION, state, states.DISCONNECT) is CLOSED
    for state in states.CHANNEL:
        states.transition(states.CHANNEL, state, states.RELEASE)


def test_a_channel_we_close_waits_for_close_ok():
    state = states.transition(states.CHANNEL, states.OPEN, states.SEND_CLOSE)
    assert state is states.CHANNEL_CLOSING
    assert states.transition(states.CHANNEL, state, C.Channel.CloseOk) is states.CHANNEL_CLOSED
    assert states.transition(states.CHANNEL, states.OPEN, C.Channel.Close) is \
        states.CHANNEL_CLOSED


def test_sentinels_print_their_names():
    assert repr(RUNNING) == 'RUNNING' and repr(states.SEND_CLOSE) == 'SEND_CLOSE'


# --- the handshake, without a socket ---------------------------------------------


class Peer(Handshake):
    """The handshake with its I/O replaced by lists."""

    def __init__(self, peer: str = '127.0.0.1:40000', **settings: Any) -> None:
        users = Users()
        users.add('guest', 'guest', vhosts={'/'}, loopback_only=True)
        users.add('app', 's3cret', vhosts={'/', 'reports'})
        vhosts = {name: VirtualHost(name, MemoryStore(), ManualClock())
                  for name in ('/', 'reports', 'other')}
        super().__init__(Sessions(Settings(**settings), users, vhosts, {'product': 'test'}))
        self.peer = peer
        self.sent: list[tuple[int, Any]] = []
        self.hooks: list[str] = []

    def send_method(self, channel_id: int, method: Any) -> None:
        self.sent.append((channel_id, method))

    def login_refused(self) -> None:
        self.hooks.append('login refused')

    def tuned(self) -> None:
        self.hooks.append('tuned')

    def opened(self) -> None:
        self.hooks.append('opened')

    def closed_by_peer(self) -> None:
        self.hooks.append('closed by peer')

    def feed(self, data: bytes) -> list[Any]:
        """Bytes in as the connection takes them; the methods sent back out."""
        self.sent.clear()
        if self.state is AWAIT_HEADER:
            data = self.receive_header(data)
        for frame_type, channel, payload in self.reader.feed(data):
            assert (frame_type, channel) == (FRAME_METHOD, 0)
            self.receive_method(decode_method(payload))
        return [method for _, method in self.sent]


def wire(*methods: Any) -> bytes:
    return b''.join(pframe.marshal(m, 0) for m in methods)


def start_ok(user: str = 'guest', password: str = 'guest', **capabilities: bool) -> Any:
    return C.Connection.StartOk(client_properties={'capabilities': capabilities},
                                mechanism='PLAIN', response=f'\0{user}\0{password}')


def test_a_client_is_greeted_tuned_and_opened():
    peer = Peer()
    [start] = peer.feed(PROTOCOL_HEADER)
    assert isinstance(start, C.Connection.Start)
    assert start.server_properties == {'product': 'test'}
    assert start.mechanisms == 'PLAIN AMQPLAIN'
    [tune] = peer.feed(wire(start_ok()))
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)
    assert peer.feed(wire(C.Connection.TuneOk(channel_max=100, frame_max=65536,
                                              heartbeat=10))) == []
    assert (peer.channel_max, peer.frame_max, peer.heartbeat) == (100, 65536, 10)
    assert peer.reader.frame_max == 65536 + 8
    [open_ok] = peer.feed(wire(C.Connection.Open(virtual_host='/')))
    assert isinstance(open_ok, C.Connection.OpenOk)
    assert peer.state is RUNNING and peer.vhost.name == '/' and peer.username == 'guest'
    assert peer.hooks == ['tuned', 'opened']


def test_the_whole_handshake_may_arrive_in_one_piece():
    peer = Peer()
    sent = peer.feed(PROTOCOL_HEADER + wire(start_ok(), C.Connection.TuneOk(
        channel_max=0, frame_max=0, heartbeat=0), C.Connection.Open()))
    assert [type(m) for m in sent] == [C.Connection.Start, C.Connection.Tune,
                                       C.Connection.OpenOk]
    assert peer.state is RUNNING and peer.channel_max == 2047


def test_a_header_in_pieces_is_waited_for_and_0_9_is_taken_as_0_9_1():
    peer = Peer()
    assert peer.feed(b'AMQP') == []
    assert peer.state is AWAIT_HEADER
    assert [type(m) for m in peer.feed(b'\x00\x00\x09\x01')] == [C.Connection.Start]
    assert [type(m) for m in Peer().feed(b'AMQP\x01\x01\x00\x09')] == [C.Connection.Start]


def test_another_protocol_is_refused_and_the_state_stays():
    peer = Peer()
    with pytest.raises(BadProtocolHeader):
        peer.feed(b'GET / HTTP/1.1\r\n')
    assert peer.state is AWAIT_HEADER and peer.sent == []


def test_a_method_out_of_order_is_503_naming_the_expected_one():
    peer = Peer()
    peer.feed(PROTOCOL_HEADER)
    with pytest.raises(CommandInvalid) as info:
        peer.feed(wire(C.Connection.Open()))
    assert info.value.text == "COMMAND_INVALID - expected 'connection.startok', got " \
                              "'connection.open'"
    assert peer.state is AWAIT_START_OK      # an illegal event moves nothing


def test_a_wrong_password_closes_with_403_when_the_client_can_hear_it():
    peer = Peer()
    peer.feed(PROTOCOL_HEADER)
    with pytest.raises(ConnectionAccessRefused, match='Login was refused using '
                                                      'authentication mechanism PLAIN'):
        peer.feed(wire(start_ok(password='wrong', authentication_failure_close=True)))


def test_a_wrong_password_drops_a_client_that_cannot_hear_it():
    peer = Peer()
    peer.feed(PROTOCOL_HEADER)
    assert peer.feed(wire(start_ok(password='wrong'))) == []
    assert peer.hooks == ['login refused']


def test_guest_may_log_in_from_loopback_only():
    peer = Peer(peer='10.1.2.3:5000')
    peer.feed(PROTOCOL_HEADER)
    assert peer.feed(wire(start_ok())) == []
    assert peer.hooks == ['login refused']


def test_an_unknown_mechanism_is_403():
    peer = Peer()
    peer.feed(PROTOCOL_HEADER)
    with pytest.raises(ConnectionAccessRefused, match="unsupported authentication mechanism "
                                                      "'EXTERNAL'"):
        peer.feed(wire(C.Connection.StartOk(mechanism='EXTERNAL', response='')))


def tuned(peer: Peer, user: str = 'guest', password: str = 'guest') -> None:
    peer.feed(PROTOCOL_HEADER + wire(start_ok(user, password), C.Connection.TuneOk(
        channel_max=0, frame_max=0, heartbeat=0)))


@pytest.mark.parametrize('frame_max, text', [
    (1024, 'frame_max=1024 < 4096 min size'),
    (1 << 20, 'frame_max=1048576 > 131072 max size'),
])
def test_a_frame_max_out_of_bounds_is_530(frame_max, text):
    peer = Peer()
    peer.feed(PROTOCOL_HEADER + wire(start_ok()))
    with pytest.raises(NotAllowed, match=text):
        peer.feed(wire(C.Connection.TuneOk(frame_max=frame_max)))


def test_opening_a_vhost_needs_it_to_exist_and_the_user_to_have_it():
    peer = Peer()
    tuned(peer, 'app', 's3cret')
    with pytest.raises(NotAllowed, match='vhost nowhere not found'):
        peer.feed(wire(C.Connection.Open(virtual_host='nowhere')))
    peer = Peer()
    tuned(peer, 'app', 's3cret')
    with pytest.raises(NotAllowed, match="access to vhost 'other' refused for user 'app'"):
        peer.feed(wire(C.Connection.Open(virtual_host='other')))
    peer = Peer()
    tuned(peer, 'app', 's3cret')
    peer.feed(wire(C.Connection.Open(virtual_host='reports')))
    assert peer.vhost.name == 'reports'


def running() -> Peer:
    peer = Peer()
    tuned(peer)
    peer.feed(wire(C.Connection.Open()))
    return peer


def test_once_running_a_close_is_answered_with_close_ok():
    peer = running()
    sent = peer.feed(wire(C.Connection.Close(reply_code=200, reply_text='bye', class_id=0,
                                             method_id=0)))
    assert [type(m) for m in sent] == [C.Connection.CloseOk]
    assert peer.state is CLOSED and peer.hooks[-1] == 'closed by peer'


def test_once_running_update_secret_is_answered_and_blocked_ignored():
    peer = running()
    assert [type(m) for m in peer.feed(wire(C.Connection.UpdateSecret(
        new_secret='s', reason='r')))] == [C.Connection.UpdateSecretOk]
    assert peer.feed(wire(C.Connection.Blocked(reason='x'), C.Connection.Unblocked())) == []
    assert peer.state is RUNNING


def test_once_running_a_handshake_method_is_503_and_another_class_504():
    peer = running()
    with pytest.raises(CommandInvalid, match="unexpected 'connection.startok'"):
        peer.feed(wire(start_ok()))
    with pytest.raises(ChannelErrorCode, match='unexpected method in connection state running'):
        peer.feed(wire(C.Queue.Declare(queue='q')))
    assert peer.state is RUNNING
