"""Messages whose headers table the broker cannot read.

The broker relays a message's headers unread, so it accepts any table that
lies within its content header: an unknown field type, nesting past 100
levels, a string that claims more bytes than its table, a long string that
is not UTF-8, a timestamp of 2^63-1, a field name that is not UTF-8.  Only a
table that runs past the content header itself is refused (406, with a text
that says so).  Whichever way the consumer holding the messages goes
(channel close, TCP drop, reject with requeue, nack or TTL to a dead-letter
exchange, a clean restart, kill -9) every accepted message is still there,
its table byte for byte with the broker's own fields after it, no consumer
is left behind, and the broker restarts.
"""

from __future__ import annotations

import signal
import struct
import time

import pytest
from pamqp import commands as C
from pamqp import decode as pamqp_decode

from ..http.client import Api
from ..processes import wait_until
from ..rawamqp import RawClient


def table(content: bytes) -> bytes:
    return struct.pack('>I', len(content)) + content


def nested(depth: int) -> bytes:
    inner = b''
    for _ in range(depth):
        inner = b'\x01kF' + table(inner)
    return table(inner)


#: kind -> (headers table, the refusal's text, or None when it is kept)
KINDS = {
    'unknown-type-o': (table(b'\x01ko'), None),
    'nested-600-deep': (nested(600), None),
    'string-past-its-table': (table(b'\x01kS' + struct.pack('>I', 200) + b'ab'), None),
    'table-past-the-header': (struct.pack('>I', 500) + b'\x01kt\x01',
                              'runs past the end of the content header'),
    'longstr-not-utf8': (table(b'\x01kS' + struct.pack('>I', 2) + b'\xc3\x28'), None),
    'timestamp-2-63-1': (table(b'\x01kT' + struct.pack('>Q', 2**63 - 1)), None),
    'name-not-utf8': (table(b'\x02\xff\xfeb\x01'), None),
}
#: The kinds no AMQP decoder reads whole (the broker appends after them).
UNREADABLE = ('unknown-type-o', 'nested-600-deep', 'string-past-its-table')
MODES = {'transient': 1, 'persistent': 2}


def content_header(headers: bytes | None, delivery_mode: int, body_size: int) -> bytes:
    flags = 0x1000 | (0x2000 if headers is not None else 0)
    return (struct.pack('>HHQH', 60, 0, body_size, flags) + (headers or b'')
            + bytes((delivery_mode,)))


def declare(client: RawClient, queue: str, durable: bool = False,
            arguments: dict | None = None) -> None:
    client.rpc(1, C.Queue.Declare(queue=queue, durable=durable, arguments=arguments),
               C.Queue.DeclareOk)


def counts(client: RawClient, queue: str) -> tuple[int, int]:
    ok = client.rpc(1, C.Queue.Declare(queue=queue, passive=True), C.Queue.DeclareOk)
    return ok.message_count, ok.consumer_count


def publish_three(client: RawClient, queue: str, kind: str, mode: str) -> int:
    """A good message, the odd one, a good one; return how many were accepted."""
    headers, refusal = KINDS[kind]
    delivery_mode = MODES[mode]
    client.open_channel(2)
    client.open_channel(3)
    client.send_content(2, '', queue, content_header(None, delivery_mode, 4), b'good')
    client.send_content(3, '', queue, content_header(headers, delivery_mode, 3), b'odd')
    client.send_content(2, '', queue, content_header(None, delivery_mode, 4), b'good')
    if refusal is not None:
        close = client.expect(C.Channel.Close, 3)
        assert close.reply_code == 406
        assert refusal in close.reply_text, close.reply_text
        assert close.class_id == 60 and close.method_id == 40
        client.send_method(3, C.Channel.CloseOk())
    else:
        client.rpc(3, C.Channel.Close(reply_code=200, class_id=0, method_id=0), C.Channel.CloseOk)
    client.rpc(2, C.Channel.Close(reply_code=200, class_id=0, method_id=0), C.Channel.CloseOk)
    return 2 if refusal is not None else 3


def read_delivery(client: RawClient) -> tuple[int, bytes, bytes]:
    """(delivery tag, content-header payload, body) of the next deliver or get-ok."""
    while True:
        frame_type, _channel, payload = client.read_raw_frame()
        if frame_type == 1:
            break
        assert frame_type == 8, (frame_type, payload)    # heartbeats only
    index = struct.unpack_from('>I', payload)[0]
    if index == 0x003C003C:                  # basic.deliver: consumer tag first
        tag = struct.unpack_from('>Q', payload, 5 + payload[4])[0]
    else:
        assert index == 0x003C0047, hex(index)   # basic.get-ok
        tag = struct.unpack_from('>Q', payload, 4)[0]
    frame_type, _channel, header = client.read_raw_frame()
    assert frame_type == 2
    body_size = struct.unpack_from('>Q', header, 4)[0]
    body = b''
    while len(body) < body_size:
        frame_type, _channel, part = client.read_raw_frame()
        assert frame_type == 3
        body += part
    return tag, header, body


def get_all(client: RawClient, queue: str, count: int) -> list[tuple[int, bytes, bytes]]:
    out = []
    for _ in range(count):
        client.send_method(1, C.Basic.Get(queue=queue))
        out.append(read_delivery(client))
    return out


def assert_kept(deliveries: list[tuple[int, bytes, bytes]], kind: str) -> None:
    """The odd message is among them, its headers entry byte for byte."""
    headers, refusal = KINDS[kind]
    bodies = sorted(body for _, _, body in deliveries)
    if refusal is not None:
        assert bodies == [b'good', b'good']
        return
    assert bodies == [b'good', b'good', b'odd']
    odd_header = next(h for _, h, body in deliveries if body == b'odd')
    assert headers[4:] in odd_header


@pytest.fixture
def client(broker):
    with RawClient(broker.port) as c:
        c.handshake()
        c.open_channel(1)
        yield c


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
def test_consumer_channel_closed(broker, client, unique, kind, mode):
    declare(client, unique)
    accepted = publish_three(client, unique, kind, mode)
    with RawClient(broker.port) as consumer:
        consumer.handshake()
        consumer.open_channel(1)
        consumer.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
        held = [read_delivery(consumer) for _ in range(accepted)]
        assert_kept(held, kind)
        consumer.rpc(1, C.Channel.Close(reply_code=200, class_id=0, method_id=0), C.Channel.CloseOk)
        assert counts(client, unique) == (accepted, 0)
        consumer.open_channel(1)
        again = get_all(consumer, unique, accepted)
    assert_kept(again, kind)
    assert all(b'x-delivery-count' in header for _, header, _ in again)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
def test_consumer_connection_dropped(broker, client, unique, kind, mode):
    declare(client, unique)
    accepted = publish_three(client, unique, kind, mode)
    consumer = RawClient(broker.port)
    consumer.handshake()
    consumer.open_channel(1)
    consumer.rpc(1, C.Basic.Consume(queue=unique, consumer_tag='c'), C.Basic.ConsumeOk)
    for _ in range(accepted):
        read_delivery(consumer)
    consumer.close()            # no channel.close, no connection.close
    wait_until(lambda: counts(client, unique) == (accepted, 0), timeout=10,
               message=lambda: f'{counts(client, unique)} != ({accepted}, 0)')
    assert_kept(get_all(client, unique, accepted), kind)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
def test_rejected_with_requeue(broker, client, unique, kind, mode):
    declare(client, unique)
    accepted = publish_three(client, unique, kind, mode)
    for tag, _, _ in get_all(client, unique, accepted):
        client.send_method(1, C.Basic.Reject(delivery_tag=tag, requeue=True))
    assert counts(client, unique) == (accepted, 0)
    assert_kept(get_all(client, unique, accepted), kind)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
def test_nacked_to_a_dead_letter_exchange(broker, client, unique, kind, mode):
    dlq = unique + '.dlq'
    declare(client, dlq)
    declare(client, unique, arguments={'x-dead-letter-exchange': '',
                                       'x-dead-letter-routing-key': dlq})
    accepted = publish_three(client, unique, kind, mode)
    for tag, _, _ in get_all(client, unique, accepted):
        client.send_method(1, C.Basic.Nack(delivery_tag=tag, requeue=False))
    assert counts(client, dlq) == (accepted, 0)
    dead = get_all(client, dlq, accepted)
    assert_kept(dead, kind)
    assert all(b'x-death' in header for _, header, _ in dead)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
def test_expired_to_a_dead_letter_exchange(broker, client, unique, kind, mode):
    dlq = unique + '.dlq'
    declare(client, dlq)
    declare(client, unique, arguments={'x-message-ttl': 20, 'x-dead-letter-exchange': '',
                                       'x-dead-letter-routing-key': dlq})
    accepted = publish_three(client, unique, kind, mode)
    wait_until(lambda: counts(client, dlq) == (accepted, 0), timeout=10)
    assert counts(client, unique) == (0, 0)
    assert_kept(get_all(client, dlq, accepted), kind)


@pytest.mark.parametrize('how', ['clean-stop', 'kill-9'])
def test_the_broker_restarts_with_every_accepted_message(fresh_broker, how):
    fresh_broker.start()
    expected = {}
    with RawClient(fresh_broker.port) as client:
        client.handshake()
        client.open_channel(1)
        for kind in KINDS:
            for mode in MODES:
                queue = f'{kind}.{mode}'
                declare(client, queue, durable=True)
                accepted = publish_three(client, queue, kind, mode)
                expected[queue] = accepted if mode == 'persistent' else 0
                # One delivery out and unacked when the broker goes.
                client.send_method(1, C.Basic.Get(queue=queue))
                read_delivery(client)
        # Everything written before a confirmed persistent message is on disk.
        declare(client, 'sync', durable=True)
        client.open_channel(5)
        client.rpc(5, C.Confirm.Select(), C.Confirm.SelectOk)
        client.send_content(5, '', 'sync', content_header(None, 2, 0), b'')
        client.expect(C.Basic.Ack, 5)
        if how == 'kill-9':
            fresh_broker.stop(signal.SIGKILL)
    if how == 'clean-stop':
        assert fresh_broker.stop() == 0
    time.sleep(0.1)
    for _ in range(2):      # and once more: what was recovered recovers again
        fresh_broker.start()
        with RawClient(fresh_broker.port) as client:
            client.handshake()
            client.open_channel(1)
            for queue, count in expected.items():
                assert counts(client, queue) == (count, 0), queue
        assert fresh_broker.stop() == 0
    with RawClient(fresh_broker.start().port) as client:
        client.handshake()
        client.open_channel(1)
        for queue, count in expected.items():
            if count:
                assert_kept(get_all(client, queue, count), queue.rsplit('.', 1)[0])
    assert 'Traceback' not in fresh_broker.log()


def broker_fields(header: bytes, kind: str) -> dict:
    """The fields the broker wrote after a table it cannot read, as pamqp
    decodes them: the publisher's content stays first, byte for byte."""
    content = KINDS[kind][0][4:]
    start = header.index(content) - 4
    end = start + 4 + struct.unpack_from('>I', header, start)[0]
    appended = header[start + 4 + len(content):end]
    return pamqp_decode.field_table(struct.pack('>I', len(appended)) + appended)[1]


@pytest.mark.parametrize('kind', UNREADABLE)
def test_requeued_over_and_over_the_count_is_rewritten_in_place(client, unique, kind):
    declare(client, unique)
    publish_three(client, unique, kind, 'transient')
    sizes = []
    for round_ in range(10):
        deliveries = get_all(client, unique, 3)
        assert_kept(deliveries, kind)
        odd = next(header for _, header, body in deliveries if body == b'odd')
        assert broker_fields(odd, kind) == ({'x-delivery-count': round_} if round_ else {})
        sizes.append(len(odd))
        for tag, _, _ in deliveries:
            client.send_method(1, C.Basic.Reject(delivery_tag=tag, requeue=True))
    assert len(set(sizes[1:])) == 1, sizes       # not one more field per requeue


@pytest.mark.parametrize('kind', UNREADABLE)
def test_dead_lettered_back_and_forth_its_deaths_are_counted(client, unique, kind):
    a, b = unique + '.a', unique + '.b'
    declare(client, a, arguments={'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': b})
    declare(client, b, arguments={'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': a})
    publish_three(client, a, kind, 'transient')
    for queue in (a, b, a, b):
        for tag, _, _ in get_all(client, queue, 3):
            client.send_method(1, C.Basic.Nack(delivery_tag=tag, requeue=False))
    dead = get_all(client, a, 3)
    assert_kept(dead, kind)
    fields = broker_fields(next(header for _, header, body in dead if body == b'odd'), kind)
    assert sorted((d['queue'], d['reason'], d['count']) for d in fields.pop('x-death')) == [
        (a, 'rejected', 2), (b, 'rejected', 2)]
    assert fields == {'x-first-death-reason': 'rejected', 'x-first-death-queue': a,
                      'x-first-death-exchange': ''}


@pytest.mark.parametrize('kind', UNREADABLE)
def test_expiring_round_a_cycle_is_dropped_as_rabbitmq_does(client, unique, kind):
    # a expires into b, b expires into a fanout to a and a witness.  Back at
    # a, with no rejection on the way, the message is dropped (RabbitMQ's
    # cycle rule), which needs the x-death written at a read back from after
    # the unreadable table.  Were it not, the messages would go round for
    # ever, staying in b most of the time, and the witness would keep growing.
    a, b, witness, fanout = (unique + suffix for suffix in ('.a', '.b', '.witness', '.fan'))
    declare(client, a, arguments={'x-message-ttl': 10, 'x-dead-letter-exchange': '',
                                  'x-dead-letter-routing-key': b})
    declare(client, b, arguments={'x-message-ttl': 200, 'x-dead-letter-exchange': fanout})
    declare(client, witness)
    client.rpc(1, C.Exchange.Declare(exchange=fanout, exchange_type='fanout'),
               C.Exchange.DeclareOk)
    for queue in (a, witness):
        client.rpc(1, C.Queue.Bind(queue=queue, exchange=fanout), C.Queue.BindOk)
    publish_three(client, a, kind, 'transient')
    wait_until(lambda: counts(client, witness) == (3, 0), timeout=10,
               message=lambda: f'{counts(client, witness)} != (3, 0)')
    assert counts(client, a) == (0, 0)
    assert counts(client, b) == (0, 0)
    assert_kept(get_all(client, witness, 3), kind)


def test_a_headers_exchange_refuses_a_table_it_cannot_read(client, unique):
    client.rpc(1, C.Exchange.Declare(exchange=unique, exchange_type='headers'),
               C.Exchange.DeclareOk)
    client.open_channel(2)
    client.send_content(2, unique, '', content_header(KINDS['unknown-type-o'][0], 1, 3), b'odd')
    close = client.expect(C.Channel.Close, 2)
    assert close.reply_code == 406
    assert "unknown field type 'o'" in close.reply_text, close.reply_text
    client.send_method(2, C.Channel.CloseOk())
    declare(client, unique)         # the connection and its other channels go on


#: What the management API shows as the odd message's headers.
SHOWN = {
    'unknown-type-o': {}, 'nested-600-deep': {}, 'string-past-its-table': {},
    'longstr-not-utf8': {'k': 'Not UTF-8, base64 is: wyg='},
    'timestamp-2-63-1': {'k': 2**63 - 1},
    'name-not-utf8': {'Not UTF-8, base64 is: //4=': 1},
}


@pytest.mark.parametrize('kind', SHOWN)
def test_the_management_api_shows_them(broker, client, unique, kind):
    declare(client, unique)
    publish_three(client, unique, kind, 'transient')
    api = Api(broker.api)
    get = f'/queues/%2F/{unique}/get'
    for requeues in (0, 1):
        got = api.post(get, {'count': 3, 'ackmode': 'ack_requeue_true', 'encoding': 'auto'})
        assert got.status == 200, got.json
        assert sorted(m['payload'] for m in got.json) == ['good', 'good', 'odd']
        odd = next(m for m in got.json if m['payload'] == 'odd')
        expected = dict(SHOWN[kind], **({'x-delivery-count': 1} if requeues else {}))
        assert odd['properties']['headers'] == expected
