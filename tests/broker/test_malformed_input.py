"""Malformed input closes that one connection (or channel) with the right
reply code; the server and every other connection go on."""

from __future__ import annotations

import os
import struct

import pytest
from pamqp import commands as C
from pamqp import frame as pframe

from ..rawamqp import RawClient


@pytest.fixture
def bystander(broker, unique):
    """A healthy connection that must keep working through every test."""
    client = RawClient(broker.port)
    client.handshake()
    client.open_channel(1)
    client.rpc(1, C.Queue.Declare(queue=unique, exclusive=True), C.Queue.DeclareOk)
    yield client
    client.publish(1, '', unique, b'still here')
    client.send_method(1, C.Basic.Get(queue=unique, no_ack=True))
    client.expect(C.Basic.GetOk, 1)
    client.close()


def opened(broker) -> RawClient:
    client = RawClient(broker.port)
    client.handshake()
    client.open_channel(1)
    return client


def method_frame(channel: int, payload: bytes) -> bytes:
    return struct.pack('>BHI', 1, channel, len(payload)) + payload + b'\xce'


def expect_connection_close(client: RawClient, code: int) -> C.Connection.Close:
    close = client.expect(C.Connection.Close, 0)
    assert close.reply_code == code, close.reply_text
    client.send_method(0, C.Connection.CloseOk())
    assert client.closed_by_server()
    return close


def test_garbage_after_the_handshake(broker, bystander):
    with opened(broker) as client:
        client.send(b'\x01\x00\x01\x00\x00\x00\x04garbage and more garbage' + os.urandom(64))
        assert client.closed_by_server()


def test_random_bytes_instead_of_a_handshake(broker, bystander):
    with RawClient(broker.port) as client:
        client.send(os.urandom(256))
        assert client.closed_by_server()


def test_wrong_frame_end_byte_is_501(broker, bystander):
    with opened(broker) as client:
        frame = bytearray(pframe.marshal(C.Basic.Qos(prefetch_count=1), 1))
        frame[-1] = 0x42
        client.send(bytes(frame))
        assert 'frame end' in expect_connection_close(client, 501).reply_text


def test_frame_larger_than_frame_max_is_501(broker, bystander):
    with RawClient(broker.port) as client:
        client.handshake(frame_max=4096)
        client.open_channel(1)
        client.send(struct.pack('>BHI', 3, 1, 10000) + b'x' * 10000 + b'\xce')
        expect_connection_close(client, 501)


def test_unknown_frame_type_is_501(broker, bystander):
    with opened(broker) as client:
        client.send(b'\x09\x00\x01\x00\x00\x00\x00\xce')
        expect_connection_close(client, 501)


def test_truncated_frame_then_disconnect(broker, bystander):
    with opened(broker) as client:
        client.send(pframe.marshal(C.Queue.Declare(queue='half'), 1)[:9])
    # The bystander fixture checks the server is still serving.


def test_bad_field_table_is_a_frame_error(broker, bystander):
    with opened(broker) as client:
        # queue.declare whose arguments table claims 1000 bytes but has 3.
        payload = (struct.pack('>HHH', 50, 10, 0) + b'\x01q' + b'\x00'
                   + struct.pack('>I', 1000) + b'abc')
        client.send(method_frame(1, payload))
        expect_connection_close(client, 501)


def test_truncated_method_payload_is_a_frame_error(broker, bystander):
    with opened(broker) as client:
        client.send(method_frame(1, struct.pack('>HH', 60, 40) + b'\x00'))
        expect_connection_close(client, 501)


def test_unknown_method_is_refused(broker, bystander):
    with opened(broker) as client:
        client.send(method_frame(1, struct.pack('>HH', 60, 999)))
        expect_connection_close(client, 503)


def test_method_on_a_channel_that_is_not_open_is_504(broker, bystander):
    with opened(broker) as client:
        client.send_method(7, C.Queue.Declare(queue='x'))
        expect_connection_close(client, 504)


def test_content_header_without_a_publish_is_505(broker, bystander):
    with opened(broker) as client:
        client.send(struct.pack('>BHI', 2, 1, 14) + struct.pack('>HHQH', 60, 0, 1, 0) + b'\xce')
        expect_connection_close(client, 505)


def test_method_in_the_middle_of_content_is_505(broker, bystander):
    with opened(broker) as client:
        client.send(pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1))
        client.send_method(1, C.Basic.Qos(prefetch_count=1))
        expect_connection_close(client, 505)


def test_body_longer_than_announced_is_505(broker, bystander):
    with opened(broker) as client:
        client.send(pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1)
                    + struct.pack('>BHI', 2, 1, 14) + struct.pack('>HHQH', 60, 0, 2, 0) + b'\xce'
                    + struct.pack('>BHI', 3, 1, 5) + b'12345' + b'\xce')
        expect_connection_close(client, 505)


def test_connection_method_on_a_channel_is_refused(broker, bystander):
    with opened(broker) as client:
        client.send_method(1, C.Connection.Open(virtual_host='/'))
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 503
        assert close.reply_text == "COMMAND_INVALID - unimplemented method"


def test_channel_error_drops_frames_until_close_ok(broker, bystander, unique):
    with opened(broker) as client:
        client.send_method(1, C.Queue.Declare(queue=unique + 'missing', passive=True))
        close = client.expect(C.Channel.Close, 1)
        assert close.reply_code == 404
        assert (close.class_id, close.method_id) == (50, 10)
        # Ignored: the channel is closing.
        client.send_method(1, C.Queue.Declare(queue=unique + 'x'))
        client.send_method(1, C.Channel.CloseOk())
        client.open_channel(1)
        client.rpc(1, C.Queue.Declare(queue=unique + 'y', exclusive=True), C.Queue.DeclareOk)
        # The declare sent while closing was dropped.
        client.send_method(1, C.Queue.Declare(queue=unique + 'x', passive=True))
        assert client.expect(C.Channel.Close, 1).reply_code == 404


def test_one_bad_channel_leaves_the_others_working(broker, bystander, unique):
    with opened(broker) as client:
        client.open_channel(2)
        client.send_method(1, C.Basic.Ack(delivery_tag=5))
        assert client.expect(C.Channel.Close, 1).reply_code == 406
        client.rpc(2, C.Queue.Declare(queue=unique + 'z', exclusive=True), C.Queue.DeclareOk)


def test_immediate_publish_is_540_with_rabbitmqs_text(broker, bystander):
    with opened(broker) as client:
        client.publish(1, '', 'q', b'x', immediate=True)
        close = expect_connection_close(client, 540)
        assert close.reply_text == 'NOT_IMPLEMENTED - immediate=true'
        assert (close.class_id, close.method_id) == (60, 40)


def test_heartbeat_on_a_channel_is_505(broker, bystander):
    with opened(broker) as client:
        client.send(b'\x08\x00\x01\x00\x00\x00\x00\xce')
        expect_connection_close(client, 505)


def test_out_of_order_content_texts_match_rabbitmq(broker, bystander):
    with opened(broker) as client:
        client.send(struct.pack('>BHI', 3, 1, 3) + b'abc\xce')
        close = expect_connection_close(client, 505)
        assert close.reply_text == ('UNEXPECTED_FRAME - expected method frame, '
                                    'got non method frame instead')
    with opened(broker) as client:
        client.send(pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1))
        client.send(struct.pack('>BHI', 3, 1, 3) + b'abc\xce')
        close = expect_connection_close(client, 505)
        assert close.reply_text == ('UNEXPECTED_FRAME - expected content header for class 60, '
                                    'got non content header frame instead')
        assert (close.class_id, close.method_id) == (60, 40)


@pytest.mark.parametrize('raw_properties,text', [
    (b'\x10\x00\x03', 'invalid message: {delivery_mode_unknown,3}'),
    (b'\x01\x00\x03abc', "invalid expiration 'abc': no_integer"),
    (b'\x01\x00\x02-1', "invalid expiration '-1': {value_negative,-1}"),
])
def test_invalid_properties_close_the_channel_with_406(broker, bystander, raw_properties,
                                                       text):
    with opened(broker) as client:
        header = struct.pack('>HHQ', 60, 0, 1) + raw_properties
        client.send(pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1)
                    + struct.pack('>BHI', 2, 1, len(header)) + header + b'\xce'
                    + struct.pack('>BHI', 3, 1, 1) + b'x\xce')
        close = client.expect(C.Channel.Close, 1)
        assert close.reply_code == 406
        assert close.reply_text == 'PRECONDITION_FAILED - ' + text


def test_recover_without_requeue_is_not_implemented(broker, bystander):
    with opened(broker) as client:
        client.send_method(1, C.Basic.Recover(requeue=False))
        close = expect_connection_close(client, 540)
        assert close.reply_text == 'NOT_IMPLEMENTED - requeue=false'


def test_channel_method_on_channel_0_is_504(broker, bystander):
    with opened(broker) as client:
        client.send_method(0, C.Basic.Qos(prefetch_count=1))
        close = expect_connection_close(client, 504)
        assert close.reply_text == 'CHANNEL_ERROR - unexpected method in connection state running'


def test_too_many_channels_is_530(broker, bystander):
    with RawClient(broker.port) as client:
        client.send(b'AMQP\x00\x00\x09\x01')
        client.expect(C.Connection.Start, 0)
        client.send_method(0, C.Connection.StartOk(
            client_properties={}, mechanism='PLAIN', response='\0guest\0guest'))
        client.expect(C.Connection.Tune, 0)
        client.send_method(0, C.Connection.TuneOk(channel_max=2, frame_max=131072, heartbeat=0))
        client.send_method(0, C.Connection.Open(virtual_host='/'))
        client.expect(C.Connection.OpenOk, 0)
        client.open_channel(1)
        client.open_channel(9)           # numbers above channel_max are fine
        client.send_method(3, C.Channel.Open())
        expect_connection_close(client, 530)


def declare_with_arguments(table_content: bytes) -> bytes:
    return method_frame(1, struct.pack('>HHH', 50, 10, 0) + b'\x01q' + b'\x00'
                        + struct.pack('>I', len(table_content)) + table_content)


def test_an_argument_array_past_the_bound_is_refused_in_one_pass(broker, bystander):
    # 60,000 values (void, one byte each): past the 10,000 a table may hold.
    values = b'V' * 60_000
    array = b'\x01kA' + struct.pack('>I', len(values)) + values
    with opened(broker) as client:
        client.send(declare_with_arguments(array))
        close = expect_connection_close(client, 501)
        assert 'more than 10000 values' in close.reply_text
    assert 'Traceback' not in broker.log()


def test_arrays_nested_twenty_thousand_deep_are_refused_without_a_traceback(broker, bystander):
    inner = b''
    for _ in range(20_000):
        inner = b'A' + struct.pack('>I', len(inner)) + inner
    with opened(broker) as client:
        client.send(declare_with_arguments(b'\x01k' + inner))
        close = expect_connection_close(client, 501)
        assert 'nested more than 100 deep' in close.reply_text
    assert 'Traceback' not in broker.log()
    assert 'RecursionError' not in broker.log()
