"""Limits that keep one client from hurting the rest: RabbitMQ's vhost and
user limits (max-connections, max-queues), consumers per channel, and the
unacked cap of a channel whose consumer set no prefetch."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import commands as C
from pamqp import header as pheader

from ..conftest import BrokerProcess
from ..rawamqp import RawClient
from .conftest import Api, quote


def url(broker, user: str = 'guest', password: str | None = None, vhost: str = '/') -> str:
    return f'amqp://{user}:{password or user}@127.0.0.1:{broker.port}/{quote(vhost)}'


def add_user(admin: Api, name: str) -> None:
    admin.ok('PUT', f'/users/{name}', {'password': name, 'tags': ''})
    admin.ok('PUT', f'/permissions/%2F/{name}', {'configure': '.*', 'write': '.*', 'read': '.*'})


def refused_connection(address: str) -> str:
    """The close pika reports for a refused connection.open: '(code) "text"'."""
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as info:
        pika.BlockingConnection(pika.URLParameters(address))
    return str(info.value)


# --- connections ----------------------------------------------------------------------


def test_a_vhost_connection_limit_refuses_the_connection_past_it(own_broker, admin):
    admin.ok('PUT', '/vhost-limits/%2F/max-connections', {'value': 1})
    first = pika.BlockingConnection(pika.URLParameters(url(own_broker)))
    assert refused_connection(url(own_broker)).endswith(
        '(530) "NOT_ALLOWED - access to vhost \'/\' refused for user \'guest\': connection '
        'limit (1) is reached"')
    first.close()
    # Its place is free again.
    pika.BlockingConnection(pika.URLParameters(url(own_broker))).close()
    assert admin.ok('GET', '/vhost-limits') == [{'vhost': '/', 'value':
                                                 {'max-connections': 1}}]
    admin.ok('DELETE', '/vhost-limits/%2F/max-connections')
    assert admin.ok('GET', '/vhost-limits/%2F') == []


def test_a_user_connection_limit_counts_that_users_connections_only(own_broker, admin):
    add_user(admin, 'capped')
    admin.ok('PUT', '/user-limits/capped/max-connections', {'value': 2})
    held = [pika.BlockingConnection(pika.URLParameters(url(own_broker, 'capped')))
            for _ in range(2)]
    assert refused_connection(url(own_broker, 'capped')).endswith(
        '(530) "NOT_ALLOWED - Connection refused for user \'capped\': user connection limit '
        '(2) is reached"')
    pika.BlockingConnection(pika.URLParameters(url(own_broker))).close()   # guest: no limit
    for conn in held:
        conn.close()
    assert admin.ok('GET', '/user-limits/capped') == [{'user': 'capped', 'value':
                                                       {'max-connections': 2}}]


def test_a_connection_limit_of_0_refuses_every_connection(own_broker, admin):
    add_user(admin, 'none-at-all')
    admin.ok('PUT', '/user-limits/none-at-all/max-connections', {'value': 0})
    assert '(530) "NOT_ALLOWED' in refused_connection(url(own_broker, 'none-at-all'))


# --- queues ---------------------------------------------------------------------------


def test_a_vhost_queue_limit_refuses_new_queues_only(own_broker, admin):
    admin.ok('PUT', '/vhost-limits/%2F/max-queues', {'value': 2})
    with pika.BlockingConnection(pika.URLParameters(url(own_broker))) as conn:
        ch = conn.channel()
        ch.queue_declare('q1')
        ch.queue_declare('q2')
        ch.queue_declare('q1')                  # existing: not a new queue
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare('q3')
        assert info.value.reply_code == 406
        assert info.value.reply_text == ("PRECONDITION_FAILED - cannot declare queue 'q3': "
                                         "queue limit in vhost '/' (2) is reached")
        ch = conn.channel()
        ch.queue_delete('q2')
        ch.queue_declare('q3')


def test_a_user_queue_limit_counts_the_queues_that_user_declared(own_broker, admin):
    add_user(admin, 'few')
    admin.ok('PUT', '/user-limits/few/max-queues', {'value': 1})
    with pika.BlockingConnection(pika.URLParameters(url(own_broker))) as conn:
        conn.channel().queue_declare('guests-own')
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'few'))) as conn:
        ch = conn.channel()
        ch.queue_declare('', exclusive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare('second')
        assert info.value.reply_text == ("PRECONDITION_FAILED - cannot declare queue 'second': "
                                         "queue limit for user 'few' (1) is reached")
    # The exclusive queue went with its connection: there is room again.
    with pika.BlockingConnection(pika.URLParameters(url(own_broker, 'few'))) as conn:
        conn.channel().queue_declare('second')


def test_limits_are_saved_and_exported_as_rabbitmq_does(own_broker, admin):
    add_user(admin, 'lim')
    admin.ok('PUT', '/vhost-limits/%2F/max-queues', {'value': 10})
    admin.ok('PUT', '/user-limits/lim/max-connections', {'value': 3})
    assert own_broker.stop() == 0
    own_broker.start(port=own_broker.port)
    exported = admin.ok('GET', '/definitions')
    assert {'vhost': '/', 'component': 'vhost-limits', 'name': 'limits',
            'value': {'max-queues': 10}} in exported['parameters']
    [lim] = [u for u in exported['users'] if u['name'] == 'lim']
    assert lim['limits'] == {'max-connections': 3}
    # And they come back from a definitions file.
    admin.ok('DELETE', '/vhost-limits/%2F/max-queues')
    admin.ok('DELETE', '/user-limits/lim/max-connections')
    admin.ok('POST', '/definitions', exported)
    assert admin.ok('GET', '/vhost-limits') == [{'vhost': '/', 'value': {'max-queues': 10}}]
    assert admin.ok('GET', '/user-limits/lim') == [{'user': 'lim', 'value':
                                                    {'max-connections': 3}}]


def test_unknown_or_malformed_limits_are_refused(own_broker, admin):
    status, answer = admin.call('PUT', '/vhost-limits/%2F/max-bananas', {'value': 1})
    assert status == 400 and "unknown limit 'max-bananas'" in answer['reason']
    status, answer = admin.call('PUT', '/vhost-limits/%2F/max-queues', {'value': 'ten'})
    assert status == 400 and 'must be an integer' in answer['reason']
    status, _ = admin.call('PUT', '/user-limits/nobody/max-queues', {'value': 1})
    assert status == 404


def test_limits_default_to_the_settings(broker_factory):
    broker = broker_factory(extra_env={'LEVERET_VHOST_MAX_QUEUES': '1',
                                       'LEVERET_USER_MAX_CONNECTIONS': '1'}).start()
    with pika.BlockingConnection(pika.URLParameters(url(broker))) as conn:
        ch = conn.channel()
        ch.queue_declare('only')
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare('another')
        assert "queue limit in vhost '/' (1) is reached" in info.value.reply_text
        assert 'user connection limit (1)' in refused_connection(url(broker))


# --- per channel ----------------------------------------------------------------------


def test_consumers_per_channel_are_capped_as_rabbitmq_does(broker_factory):
    broker = broker_factory(extra_env={'LEVERET_CONSUMER_MAX_PER_CHANNEL': '2'}).start()
    conn = pika.BlockingConnection(pika.URLParameters(url(broker)))
    ch = conn.channel()
    ch.queue_declare('many')
    ch.basic_consume('many', lambda *a: None)
    ch.basic_consume('many', lambda *a: None)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.basic_consume('many', lambda *a: None)
    assert info.value.reply_code == 530
    assert info.value.reply_text == 'NOT_ALLOWED - reached maximum (2) of consumers per channel'


def deliveries_until(client: RawClient, reply: type) -> int:
    """basic.deliver frames (with their content) read before ``reply``."""
    count = 0
    while True:
        _channel, frame = client.read_frame()
        if isinstance(frame, C.Basic.Deliver):
            count += 1
        elif isinstance(frame, reply):
            return count
        elif not isinstance(frame, (pheader.ContentHeader,)) and \
                type(frame).__name__ not in ('ContentBody', 'Heartbeat'):
            raise AssertionError(f'unexpected {frame!r}')


def test_a_consumer_without_prefetch_gets_at_most_the_channels_unacked_cap(broker_factory):
    broker: BrokerProcess = broker_factory(
        extra_env={'LEVERET_UNACKED_MAX_PER_CHANNEL': '5'}).start()
    with pika.BlockingConnection(pika.URLParameters(url(broker))) as conn:
        ch = conn.channel()
        ch.queue_declare('capped')
        for i in range(12):
            ch.basic_publish('', 'capped', str(i).encode())
    with RawClient(broker.port) as client:
        client.handshake()
        client.open_channel(1)
        client.send_method(1, C.Basic.Consume(queue='capped', consumer_tag='c'))
        # Deliveries go out in the loop turn that gives credit: what came
        # before a synchronous reply is all there was room for.
        client.expect(C.Basic.ConsumeOk, 1)
        client.send_method(1, C.Queue.Declare(queue='capped', passive=True))
        assert deliveries_until(client, C.Queue.DeclareOk) == 5
        client.send_method(1, C.Basic.Ack(delivery_tag=2, multiple=True))
        client.send_method(1, C.Queue.Declare(queue='capped', passive=True))
        assert deliveries_until(client, C.Queue.DeclareOk) == 2
        # A prefetch set by the client is the client's: the cap no longer
        # applies (and in Leveret a new prefetch applies to running consumers).
        client.send_method(1, C.Basic.Qos(prefetch_count=10))
        client.expect(C.Basic.QosOk, 1)
        client.send_method(1, C.Queue.Declare(queue='capped', passive=True))
        assert deliveries_until(client, C.Queue.DeclareOk) == 5     # 10 unacked now
