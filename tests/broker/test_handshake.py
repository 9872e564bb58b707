"""Connection handshake: protocol header, start, auth, tune, open, heartbeats."""

from __future__ import annotations

import time

import pytest
from pamqp import commands as C
from pamqp.heartbeat import Heartbeat

from leveret.broker.auth import AuthenticationError, Users

from ..rawamqp import PROTOCOL_HEADER, RawClient


@pytest.mark.parametrize('header', [b'AMQP\x00\x00\x08\x00', b'GET / HTTP/1.1\r\n\r\n',
                                    b'\x16\x03\x01\x02\x00\x01\x00\x01'])
def test_other_protocol_headers_get_ours_and_a_close(broker, header):
    with RawClient(broker.port) as client:
        client.send(header)
        assert client.recv_bytes() == PROTOCOL_HEADER
        assert client.closed_by_server()


def test_amqp_0_9_header_is_accepted(broker):
    with RawClient(broker.port) as client:
        client.send(b'AMQP\x01\x01\x00\x09')
        client.expect(C.Connection.Start, 0)


def test_connection_start_advertises_what_is_implemented(broker):
    with RawClient(broker.port) as client:
        start = client.handshake(open_vhost=False)
        props = start.server_properties
        assert props['product'] == 'Leveret'
        assert props['version'] and props['platform']
        assert props['capabilities'] == {
            'publisher_confirms': True, 'exchange_exchange_bindings': True,
            'basic.nack': True, 'consumer_cancel_notify': True, 'connection.blocked': True,
            'authentication_failure_close': True, 'per_consumer_qos': True}
        assert start.mechanisms.split() == ['PLAIN', 'AMQPLAIN']
        assert start.locales == 'en_US'
        tune = client.expect(C.Connection.Tune, 0)
        assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (2047, 131072, 60)


def test_amqplain_login(broker):
    with RawClient(broker.port) as client:
        client.handshake(mechanism='AMQPLAIN')
        client.open_channel(1)


def test_wrong_password_is_403_with_authentication_failure_close(broker):
    with RawClient(broker.port) as client:
        client.handshake(password='wrong', open_vhost=False)
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 403
        assert close.reply_text.startswith('ACCESS_REFUSED - Login was refused using '
                                           'authentication mechanism PLAIN')


def test_wrong_password_without_the_capability_just_closes(broker):
    with RawClient(broker.port) as client:
        client.handshake(password='wrong', open_vhost=False, capabilities={})
        assert client.closed_by_server()


def test_unknown_vhost_is_530(broker):
    with RawClient(broker.port) as client:
        client.send(PROTOCOL_HEADER)
        client.expect(C.Connection.Start, 0)
        client.send_method(0, C.Connection.StartOk(
            client_properties={}, mechanism='PLAIN', response='\0guest\0guest'))
        client.expect(C.Connection.Tune, 0)
        client.send_method(0, C.Connection.TuneOk(channel_max=0, frame_max=131072, heartbeat=0))
        client.send_method(0, C.Connection.Open(virtual_host='no-such-vhost'))
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 530
        assert 'no-such-vhost' in close.reply_text


def test_client_close_with_reply_code_0_is_normal(broker):
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.send_method(1, C.Channel.Close(reply_code=0, reply_text='', class_id=0,
                                              method_id=0))
        client.expect(C.Channel.CloseOk, 1)
        client.open_channel(1)   # Celery reuses the number at once
        client.send_method(0, C.Connection.Close(reply_code=0, reply_text='', class_id=0,
                                                 method_id=0))
        client.expect(C.Connection.CloseOk, 0)
        assert client.closed_by_server()


def test_server_sends_heartbeats_at_half_the_interval(broker):
    with RawClient(broker.port) as client:
        client.handshake(heartbeat=4)
        beats = 0
        deadline = time.monotonic() + 7.5
        while time.monotonic() < deadline:
            try:
                _, frame = client.read_frame(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(frame, Heartbeat):
                beats += 1
                client.send(b'\x08\x00\x00\x00\x00\x00\x00\xce')
        # Every 2 s (half of 4) once the handshake traffic is 2 s old: two by 6 s.
        assert beats >= 2


def test_silent_client_is_disconnected_after_two_intervals(broker):
    with RawClient(broker.port) as client:
        client.handshake(heartbeat=1)
        start = time.monotonic()
        assert client.closed_by_server(timeout=6)
        assert time.monotonic() - start >= 1.5


def test_heartbeat_0_means_none(broker):
    with RawClient(broker.port) as client:
        client.handshake(heartbeat=0)
        with pytest.raises(TimeoutError):
            client.read_frame(timeout=1.5)


def test_guest_is_refused_from_non_loopback_addresses():
    users = Users()
    users.add('guest', 'guest', loopback_only=True)
    assert users.authenticate('PLAIN', '\0guest\0guest', from_loopback=True).name == 'guest'
    with pytest.raises(AuthenticationError, match='only connect via localhost'):
        users.authenticate('PLAIN', '\0guest\0guest', from_loopback=False)
    with pytest.raises(AuthenticationError):
        users.authenticate('PLAIN', '\0guest\0nope', from_loopback=True)
