"""The log says what RabbitMQ's says, at info: the start (data directory,
config file, listener, what was recovered), each connection accepted,
authenticated and closed with its reason and duration.  Bad input is one
short line, and one address cannot flood the log."""

from __future__ import annotations

import re
import struct

import pika
from pamqp import commands as C

from ..processes import wait_until
from ..rawamqp import PROTOCOL_HEADER, RawClient


def test_start_up_says_where_the_data_is_what_came_back_and_where_it_listens(
        broker_factory, tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text('vhosts = ["reports"]\n')
    broker = broker_factory(args=['--config', str(config)]).start()
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare('kept', durable=True)
        ch.basic_publish('', 'kept', b'm', pika.BasicProperties(delivery_mode=2))
    assert broker.stop() == 0
    broker.start()
    log = broker.log().split('Leveret stopped')[-1]
    assert f'data directory {broker.data_dir}, config file {config}' in log
    assert '1 users, 2 vhosts, 1 queues and 1 messages after recovery' in log
    assert re.search(r'listening on 127\.0\.0\.1:\d+', log)


def test_a_connection_is_accepted_authenticated_and_closed_with_its_reason(fresh_broker):
    fresh_broker.start()
    with pika.BlockingConnection(pika.URLParameters(fresh_broker.url)) as conn:
        conn.channel()
    port = fresh_broker.port
    peer = wait_until(lambda: re.search(
        rf'accepting AMQP connection (127\.0\.0\.1:\d+) -> 127\.0\.0\.1:{port}',
        fresh_broker.log()))[1]
    wait_until(lambda: f'closing AMQP connection {peer}' in fresh_broker.log())
    log = fresh_broker.log()
    assert (f"connection {peer} -> 127.0.0.1:{port}: user 'guest' authenticated and "
            f"granted access to vhost '/'") in log
    assert re.search(rf"INFO .*closing AMQP connection {peer} -> 127\.0\.0\.1:{port} "
                     rf"\(vhost '/', user 'guest', \d+\.\ds\): closed by the client", log)


def test_a_dropped_connection_and_a_refused_one_say_why(fresh_broker):
    fresh_broker.start()
    with RawClient(fresh_broker.port) as client:
        client.handshake()
    with RawClient(fresh_broker.port) as client:
        client.handshake(password='wrong', open_vhost=False)
        client.expect(C.Connection.Close)
    wait_until(lambda: 'client unexpectedly closed TCP connection' in fresh_broker.log())
    wait_until(lambda: "login refused: user 'guest': invalid credentials" in fresh_broker.log())
    assert re.search(r"WARNING .*closing AMQP connection .* \(\d+\.\ds\): login refused",
                     fresh_broker.log())


def nested_client_properties(depth: int) -> bytes:
    inner = b''
    for _ in range(depth):
        inner = b'\x01kF' + struct.pack('>I', len(inner)) + inner
    return struct.pack('>I', len(inner)) + inner


def start_ok_payload(client_properties: bytes) -> bytes:
    response = b'\x00guest\x00guest'
    return (struct.pack('>HH', 10, 11) + client_properties + b'\x05PLAIN'
            + struct.pack('>I', len(response)) + response + b'\x05en_US')


def send_nested_start_ok(port: int, depth: int = 500) -> RawClient:
    client = RawClient(port)
    client.send(PROTOCOL_HEADER)
    client.expect(C.Connection.Start)
    payload = start_ok_payload(nested_client_properties(depth))
    client.send(struct.pack('>BHI', 1, 0, len(payload)) + payload + b'\xce')
    return client


def test_a_deeply_nested_start_ok_is_one_short_line_and_no_traceback(fresh_broker):
    fresh_broker.start()
    with send_nested_start_ok(fresh_broker.port) as client:
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 501
        assert 'nested more than 100 deep' in close.reply_text
    wait_until(lambda: 'nested more than 100 deep' in fresh_broker.log())
    log = fresh_broker.log()
    assert 'Traceback' not in log
    line = next(line for line in log.splitlines() if 'nested more than 100 deep' in line)
    assert len(line) < 400


def test_one_address_refused_over_and_over_is_summarised(fresh_broker):
    fresh_broker.start()
    attempts = 300
    for _ in range(attempts):
        with send_nested_start_ok(fresh_broker.port, depth=150) as client:
            client.expect(C.Connection.Close, 0)
    with RawClient(fresh_broker.port) as client:     # still serving everyone
        client.handshake()
        client.open_channel(1)
    assert fresh_broker.stop() == 0
    log = fresh_broker.log()
    refusals = [line for line in log.splitlines() if 'nested more than' in line]
    # 50 lines in a burst, 5 a second after it: far fewer than 2 per attempt.
    assert len(refusals) < attempts / 2, len(refusals)
    summary = re.search(r'127\.0\.0\.1: (\d+) more lines about its connections not logged', log)
    assert summary is not None and int(summary[1]) > attempts / 2
    assert 'Traceback' not in log
    assert len(log) < 100 * 1024
