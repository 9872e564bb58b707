"""The eight kinds of traceback a random-mutation fuzzer once left in the
log (issue 14), one test each: the client gets the right reply code and
RabbitMQ's kind of text, and the broker's log has no traceback.

Frames are built with Leveret's own encoder (no client-side validation), so
what pamqp refuses to send (non-UTF-8 strings, byte arrays) goes out as a
broken or hostile client sends it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from pamqp import commands as C

from leveret.protocol.methods import encode_method, encode_payload

from ..conftest import BrokerProcess
from ..http.client import call
from ..rawamqp import RawClient


@pytest.fixture(scope='module')
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    base = tmp_path_factory.mktemp('kinds')
    broker = BrokerProcess(base / 'data', base / 'broker.log').start()
    yield broker
    broker.kill()


@pytest.fixture
def broker_log_clean(module_broker: BrokerProcess) -> Iterator[BrokerProcess]:
    yield module_broker
    log = module_broker.log()
    assert 'Traceback' not in log, log[log.index('Traceback'):][:4000]
    assert 'INTERNAL_ERROR' not in log


def opened(broker: BrokerProcess) -> RawClient:
    client = RawClient(broker.port)
    client.handshake()
    client.open_channel(1)
    return client


def method_frame(channel: int, payload: bytes) -> bytes:
    return struct.pack('>BHI', 1, channel, len(payload)) + payload + b'\xce'


def refused(client: RawClient, data: bytes, code: int) -> str:
    """Send ``data``; the channel (or connection) is closed with ``code``;
    return the reply text.  A refused channel leaves the connection usable."""
    client.send(data)
    while True:
        channel, frame = client.read_frame()
        if isinstance(frame, (C.Channel.Close, C.Connection.Close)):
            break
    assert frame.reply_code == code, frame.reply_text
    if isinstance(frame, C.Channel.Close):
        client.send_method(channel, C.Channel.CloseOk())
        client.open_channel(channel)
        client.rpc(channel, C.Queue.Declare(queue='', exclusive=True), C.Queue.DeclareOk)
    else:
        client.send_method(0, C.Connection.CloseOk())
        assert client.closed_by_server()
    return frame.reply_text


def header_frame(channel: int, flags: int, properties: bytes, size: int = 0) -> bytes:
    payload = struct.pack('>HHQH', 60, 0, size, flags) + properties
    return struct.pack('>BHI', 2, channel, len(payload)) + payload + b'\xce'


# 1. TypeError: Unknown type: <class 'bytes'> (binding arguments holding bytes)
BINARY_ARGUMENTS = {'x-match': 'any', 'raw': b'\xff\xfe', 'array': bytearray(b'\x00\x01'),
                    'list': [b'\xff', bytearray(b'a')], '\udcff': 1}


def test_binding_arguments_holding_bytes_bind_list_survive_a_restart_and_unbind(
        fresh_broker, unique):
    fresh_broker.start()
    bind = C.Queue.Bind(queue=unique, exchange='amq.headers', arguments=BINARY_ARGUMENTS)
    with opened(fresh_broker) as client:
        client.rpc(1, C.Queue.Declare(queue=unique, durable=True), C.Queue.DeclareOk)
        client.send(encode_method(1, bind))
        client.expect(C.Queue.BindOk, 1)

    def listed() -> list[dict]:
        answer = call(fresh_broker.api, 'GET', f'/queues/%2F/{unique}/bindings')
        assert answer.status == 200, answer.body
        return [b for b in answer.json if b['source'] == 'amq.headers']

    arguments = listed()[0]['arguments']
    assert arguments['raw'] == 'Not UTF-8, base64 is: //4='
    assert arguments['Not UTF-8, base64 is: /w=='] == 1    # the name b'\xff'
    assert fresh_broker.stop() == 0
    fresh_broker.start()
    assert listed()[0]['arguments'] == arguments
    with opened(fresh_broker) as client:
        client.send(encode_method(1, C.Queue.Unbind(queue=unique, exchange='amq.headers',
                                                    arguments=BINARY_ARGUMENTS)))
        client.expect(C.Queue.UnbindOk, 1)
    assert listed() == []
    assert 'Traceback' not in fresh_broker.log()


# 2. "x-list error" (x- arguments holding arrays and byte arrays)
@pytest.mark.parametrize('argument, value', [
    ('x-max-priority', [1]), ('x-message-ttl', [60_000]), ('x-queue-type', ['classic']),
    ('x-dead-letter-exchange', ['dlx']), ('x-max-length', bytearray(b'\x05')),
    ('x-expires', {'in': 5}), ('x-single-active-consumer', bytearray(b'\x01')),
    ('x-overflow', ['drop-head'])])
def test_x_arguments_of_the_wrong_type_are_406(broker_log_clean, argument, value):
    with opened(broker_log_clean) as client:
        text = refused(client, encode_method(1, C.Queue.Declare(
            queue='', exclusive=True, arguments={argument: value})), 406)
    assert text.startswith(f"PRECONDITION_FAILED - invalid arg '{argument}' for queue")


def test_consumer_and_binding_arguments_of_the_wrong_type_are_406(broker_log_clean, unique):
    with opened(broker_log_clean) as client:
        client.rpc(1, C.Queue.Declare(queue=unique, exclusive=True), C.Queue.DeclareOk)
        text = refused(client, encode_method(1, C.Basic.Consume(
            queue=unique, arguments={'x-priority': [1]})), 406)
        assert text.startswith("PRECONDITION_FAILED - invalid arg 'x-priority'")
        text = refused(client, encode_method(1, C.Queue.Bind(
            queue=unique, exchange='amq.headers', arguments={'x-match': ['all']})), 406)
        assert text.startswith('PRECONDITION_FAILED - Invalid x-match field value')


# 3. UnicodeDecodeError (short strings that are not UTF-8)
def _not_utf8(method: object, name: bytes) -> bytes:
    payload = bytearray(encode_payload(method))
    payload[payload.index(name)] = 0xFF
    return method_frame(1, bytes(payload))


@pytest.mark.parametrize('method, name', [
    (C.Queue.Declare(queue='abc'), 'Queue.Declare'),
    (C.Exchange.Declare(exchange='abc', exchange_type='direct'), 'Exchange.Declare'),
    (C.Basic.Publish(exchange='', routing_key='abc'), 'Basic.Publish'),      # the fast path
])
def test_short_strings_that_are_not_utf8_are_501(broker_log_clean, method, name):
    with opened(broker_log_clean) as client:
        text = refused(client, _not_utf8(method, b'abc'), 501)
    assert text == f'FRAME_ERROR - cannot decode {name}: a short string is not valid UTF-8'


def test_an_expiration_that_is_not_utf8_is_406(broker_log_clean):
    with opened(broker_log_clean) as client:
        text = refused(client, encode_method(1, C.Basic.Publish(routing_key='nowhere'))
                       + header_frame(1, 0x0100, b'\x02\xff\xfe'), 406)
    assert 'invalid content header properties' in text and 'UTF-8' in text


# 4. struct.error: unpack requires a buffer of 1 bytes (methods cut short)
@pytest.mark.parametrize('method, keep', [
    (C.Basic.Qos(prefetch_count=1), 6), (C.Basic.Ack(delivery_tag=1), 7),
    (C.Basic.Nack(delivery_tag=1), 12), (C.Basic.Reject(delivery_tag=1), 5),
    (C.Basic.Publish(exchange='', routing_key='abc'), 7), (C.Basic.Cancel('ctag'), 8)])
def test_methods_cut_short_are_501(broker_log_clean, method, keep):
    with opened(broker_log_clean) as client:
        text = refused(client, method_frame(1, encode_payload(method)[:keep]), 501)
    assert text == f'FRAME_ERROR - cannot decode {method.name}: the payload ends before ' \
                   'its last field'


# 5. ValueError: Field table length exceeds available data
def test_a_table_longer_than_its_method_is_501(broker_log_clean):
    payload = bytearray(encode_payload(C.Queue.Declare(queue='t', arguments={'a': 1})))
    payload[-8:-4] = struct.pack('>I', 1000)       # the table's length: 4 bytes follow
    with opened(broker_log_clean) as client:
        text = refused(client, method_frame(1, bytes(payload)), 501)
    assert text == 'FRAME_ERROR - cannot decode Queue.Declare: field table: table length ' \
                   '1000 exceeds the data (4)'


def test_a_headers_table_longer_than_its_content_header_is_406(broker_log_clean):
    with opened(broker_log_clean) as client:
        text = refused(client, encode_method(1, C.Basic.Publish(routing_key='nowhere'))
                       + header_frame(1, 0x2000, struct.pack('>I', 500) + b'\x01ab\x01'), 406)
    assert 'headers table runs past the end of the content header' in text


# 6. ValueError: Could not unpack short string value
def test_short_strings_running_past_their_end_are_501(broker_log_clean):
    declare = encode_payload(C.Queue.Declare(queue='t'))
    name_past_table = declare[:-4] + struct.pack('>I', 3) + b'\x09ab'
    with opened(broker_log_clean) as client:
        text = refused(client, method_frame(1, name_past_table), 501)
        assert text.startswith('FRAME_ERROR - cannot decode Queue.Declare: field table:')
    queue_past_payload = struct.pack('>IH', C.Queue.Declare.index, 0) + b'\xf0abc'
    with opened(broker_log_clean) as client:
        text = refused(client, method_frame(1, queue_past_payload), 501)
    assert text == 'FRAME_ERROR - cannot decode Queue.Declare: the payload ends before ' \
                   'its last field'


# 7. PreconditionFailed logged as a traceback instead of a refusal
def test_precondition_failures_are_refusals(broker_log_clean, unique):
    with opened(broker_log_clean) as client:
        client.rpc(1, C.Queue.Declare(queue=unique, auto_delete=True), C.Queue.DeclareOk)
        assert 'inequivalent arg' in refused(client, encode_method(1, C.Queue.Declare(
            queue=unique, durable=True)), 406)
        assert refused(client, encode_method(1, C.Basic.Ack(delivery_tag=9)), 406) == (
            'PRECONDITION_FAILED - unknown delivery tag 9')
        assert refused(client, encode_method(1, C.Tx.Select()) + encode_method(
            1, C.Basic.Ack(delivery_tag=5)) + encode_method(1, C.Tx.Commit()), 406) == (
            'PRECONDITION_FAILED - unknown delivery tag 5')
        assert refused(client, encode_method(1, C.Tx.Commit()), 406) == (
            'PRECONDITION_FAILED - channel is not transactional')
        assert refused(client, encode_method(1, C.Tx.Select()) + encode_method(
            1, C.Confirm.Select()), 406) == (
            'PRECONDITION_FAILED - cannot switch from tx to confirm mode')
        client.rpc(1, C.Basic.Consume(queue=unique), C.Basic.ConsumeOk)
        assert 'in use' in refused(client, encode_method(1, C.Queue.Delete(
            queue=unique, if_unused=True)), 406)


# 8. CommandInvalid logged as a traceback instead of a refusal
@pytest.mark.parametrize('method', [
    C.Basic.Deliver(consumer_tag='c', delivery_tag=1, exchange='', routing_key='q'),
    C.Basic.GetOk(delivery_tag=1, exchange='', routing_key='q'),
    C.Basic.Return(reply_code=312, exchange='', routing_key='q'),
    C.Basic.CancelOk(consumer_tag='c')])
def test_server_methods_from_a_client_are_503(broker_log_clean, method):
    with opened(broker_log_clean) as client:
        text = refused(client, encode_method(1, method), 503)
    assert text == f'COMMAND_INVALID - method {method.name} is not allowed from a client'


def test_handshake_methods_once_open_and_unknown_methods_are_503(broker_log_clean):
    for data, text in [
            (encode_method(0, C.Connection.Open()), "unexpected 'connection.open'"),
            (encode_method(0, C.Connection.StartOk(mechanism='PLAIN', response='\0a\0b')),
             "unexpected 'connection.startok'"),
            (method_frame(1, struct.pack('>HH', 60, 999)), 'unknown method class 60 method 999')]:
        with opened(broker_log_clean) as client:
            assert refused(client, data, 503) == f'COMMAND_INVALID - {text}'
