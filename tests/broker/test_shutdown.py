"""SIGTERM and SIGINT: stop accepting, close connections with 320, exit 0."""

from __future__ import annotations

import signal
import socket

import pytest
from pamqp import commands as C

from ..rawamqp import RawClient


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_signal_closes_connections_with_320_and_exits_0(fresh_broker, sig):
    fresh_broker.start()
    clients = []
    for _ in range(3):
        client = RawClient(fresh_broker.port)
        client.handshake()
        client.open_channel(1)
        clients.append(client)
    fresh_broker.send_signal(sig)
    for client in clients:
        close = client.expect(C.Connection.Close, 0, timeout=10)
        assert close.reply_code == 320
        assert close.reply_text.startswith('CONNECTION_FORCED')
        client.send_method(0, C.Connection.CloseOk())
        client.close()
    assert fresh_broker.proc.wait(15) == 0
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', fresh_broker.port), timeout=1)


def test_clients_that_never_answer_do_not_hold_up_shutdown(fresh_broker):
    fresh_broker.start()
    silent = RawClient(fresh_broker.port)
    silent.handshake()
    fresh_broker.send_signal(signal.SIGTERM)
    assert fresh_broker.proc.wait(15) == 0
    silent.close()
