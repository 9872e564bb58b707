"""What the API changes: queues, exchanges, bindings, messages, connections,
users, vhosts and permissions, each checked through a real AMQP client too."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pika
import pika.exceptions
import pytest

from ..processes import wait_until
from .client import Api


def path_of(name: str) -> str:
    return name.replace(' ', '%20').replace('>', '%3E')


def test_queues_are_declared_found_by_amqp_and_deleted_with_conditions(api, broker, unique):
    assert api.put(f'/queues/%2F/{unique}', {'durable': 'true', 'auto_delete': 'false',
                                             'arguments': {'x-max-length': 5}}).status == 201
    assert api.put(f'/queues/%2F/{unique}', {'durable': True,
                                             'arguments': {'x-max-length': 5}}).status == 204
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique, durable=True, arguments={'x-max-length': 5})
        ch.basic_publish('', unique, b'one')
        refused = api.delete(f'/queues/%2F/{unique}?if-empty=true')
        assert refused.json == {'error': 'bad_request',
                                'reason': f"queue '{unique}' in vhost '/' not empty"}
        ch.basic_consume(unique, lambda *a: None)
        refused = api.delete(f'/queues/%2F/{unique}?if-unused=true')
        assert refused.json['reason'] == f"queue '{unique}' in vhost '/' in use"
        assert api.delete(f'/queues/%2F/{unique}').status == 204
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            conn.channel().queue_declare(unique, passive=True)


def test_purge_empties_a_queue(api, broker, unique):
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        for _ in range(3):
            ch.basic_publish('', unique, b'x')
        assert api.get(f'/queues/%2F/{unique}')['messages'] == 3
        assert api.delete(f'/queues/%2F/{unique}/contents').status == 204
        assert ch.queue_declare(unique, passive=True).method.message_count == 0


def test_get_requeues_or_takes_messages_as_its_ackmode_says(api, broker, unique):
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish('', unique, b'hello world', pika.BasicProperties(
            content_type='text/plain', headers={'x-h': 'v', 'x-n': 7}, app_id='a1'))
        ch.basic_publish('', unique, b'\x00\x01\xff')
    get = f'/queues/%2F/{unique}/get'
    first = api.post(get, {'count': 10, 'ackmode': 'ack_requeue_true', 'encoding': 'auto',
                           'truncate': 50000}).json
    assert [m['payload'] for m in first] == ['hello world', 'AAH/']
    assert [m['payload_encoding'] for m in first] == ['string', 'base64']
    assert first[0]['properties'] == {'app_id': 'a1', 'headers': {'x-h': 'v', 'x-n': 7},
                                      'content_type': 'text/plain'}
    assert first[1]['properties'] == []
    assert [m['message_count'] for m in first] == [1, 0]
    assert not first[0]['redelivered']
    again = api.post(get, {'count': '1', 'ackmode': 'ack_requeue_true', 'encoding': 'base64',
                           'truncate': 5}).json
    assert again[0]['redelivered'] is True          # requeued, not dropped
    assert again[0]['payload'] == 'aGVsbG8='        # 'hello': truncated to 5 bytes
    assert again[0]['payload_bytes'] == 11
    taken = api.post(get, {'count': 1, 'ackmode': 'ack_requeue_false', 'encoding': 'auto'})
    assert taken.json[0]['payload'] == 'hello world'
    assert api.get(f'/queues/%2F/{unique}')['messages'] == 1
    empty = api.post(f'/queues/%2F/{unique}/contents', None)
    assert empty.status == 405


def test_publish_routes_through_the_default_and_named_exchanges(api, broker, unique):
    assert api.put(f'/queues/%2F/{unique}', {}).status == 201
    publish = {'properties': {'delivery_mode': 2, 'headers': {'k': 'v'}},
               'routing_key': unique, 'payload': 'aGk=', 'payload_encoding': 'base64'}
    assert api.post('/exchanges/%2F/amq.default/publish', publish).json == {'routed': True}
    assert api.post('/exchanges/%2F/amq.default/publish', {
        **publish, 'routing_key': 'no-such-queue'}).json == {'routed': False}
    assert api.put(f'/exchanges/%2F/{unique}', {'type': 'topic'}).status == 201
    binding = api.post(f'/bindings/%2F/e/{unique}/q/{unique}', {'routing_key': 'a.*'})
    assert (binding.status, unquote(binding.headers['location'])) == (201, f'{unique}/a.*')
    assert api.post(f'/exchanges/%2F/{unique}/publish', {
        **publish, 'routing_key': 'a.b'}).json == {'routed': True}
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        bodies = []
        for _ in range(2):
            method, props, body = ch.basic_get(unique, auto_ack=True)
            bodies.append((body, props.delivery_mode, props.headers))
        assert bodies == [(b'hi', 2, {'k': 'v'})] * 2


def test_bindings_are_listed_found_by_properties_key_and_deleted(api, broker, unique):
    api.put(f'/exchanges/%2F/{unique}', {'type': 'headers'})
    api.put(f'/queues/%2F/{unique}', {})
    made = api.post(f'/bindings/%2F/e/{unique}/q/{unique}', {
        'routing_key': '', 'arguments': {'x-match': 'all', 'h': 'v'}})
    props = made.headers['location'].split('/', 1)[1]
    assert props.startswith('~') and len(props) > 1
    between = api.get(f'/bindings/%2F/e/{unique}/q/{unique}')
    assert [(b['properties_key'], b['arguments']) for b in between] == [
        (props, {'x-match': 'all', 'h': 'v'})]
    assert api.get(f'/bindings/%2F/e/{unique}/q/{unique}/{props}')['destination'] == unique
    assert api('GET', f'/bindings/%2F/e/{unique}/q/{unique}/~').status == 404
    sources = api.get(f'/exchanges/%2F/{unique}/bindings/source')
    assert [b['destination'] for b in sources] == [unique]
    queue_bindings = api.get(f'/queues/%2F/{unique}/bindings')
    assert [b['source'] for b in queue_bindings] == ['', unique]
    assert api.delete(f'/bindings/%2F/e/{unique}/q/{unique}/{props}').status == 204
    assert api.delete(f'/bindings/%2F/e/{unique}/q/{unique}/{props}').status == 404
    refused = api.delete(f'/exchanges/%2F/{unique}?if-unused=true')
    assert refused.status == 204


def test_exchange_to_exchange_bindings_and_if_unused(api, broker, unique):
    source, target = f'{unique}.src', f'{unique}.dst'
    assert api.put(f'/exchanges/%2F/{source}', {'type': 'direct'}).status == 201
    assert api.put(f'/exchanges/%2F/{target}', {'type': 'fanout'}).status == 201
    assert api.put(f'/queues/%2F/{unique}', {}).status == 201
    made = api.post(f'/bindings/%2F/e/{source}/e/{target}', {'routing_key': 'to.fanout'})
    assert (made.status, made.headers['location']) == (201, f'{target}/to.fanout')
    # No routing key and no arguments: the properties key is '~'.
    assert api.post(f'/bindings/%2F/e/{target}/q/{unique}', {}).status == 201
    assert api.get(f'/bindings/%2F/e/{target}/q/{unique}/~')['properties_key'] == '~'
    assert api.get(f'/exchanges/%2F/{target}/bindings/destination') == [{
        'source': source, 'vhost': '/', 'destination': target,
        'destination_type': 'exchange', 'routing_key': 'to.fanout', 'arguments': {},
        'properties_key': 'to.fanout'}]
    # A message published to the source reaches the queue through both bindings.
    assert api.post(f'/exchanges/%2F/{source}/publish', {
        'properties': {}, 'routing_key': 'to.fanout', 'payload': 'via',
        'payload_encoding': 'string'}).json == {'routed': True}
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        assert conn.channel().basic_get(unique, auto_ack=True)[2] == b'via'
    refused = api.delete(f'/exchanges/%2F/{source}?if-unused=true')
    assert (refused.status, refused.json) == (400, {
        'error': 'bad_request', 'reason': f"exchange '{source}' in vhost '/' in use"})
    assert api.delete(f'/bindings/%2F/e/{source}/e/{target}/to.fanout').status == 204
    assert api.get(f'/exchanges/%2F/{target}/bindings/destination') == []
    assert api.delete(f'/exchanges/%2F/{source}?if-unused=true').status == 204


def test_an_idle_queue_says_since_when_in_rabbitmqs_format(api, unique):
    assert api.put(f'/queues/%2F/{unique}', {}).status == 201
    since = api.get(f'/queues/%2F/{unique}')['idle_since']
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00', since), since


def test_closing_a_connection_tells_the_client_why(api, broker):
    params = pika.URLParameters(broker.url)
    params.client_properties = {'connection_name': 'victim'}
    conn = pika.BlockingConnection(params)
    name = next(c['name'] for c in api.get('/connections')
                if c['user_provided_name'] == 'victim')
    assert name.endswith(f' -> 127.0.0.1:{broker.port}')
    assert api.delete(f'/connections/{path_of(name)}',
                      headers={'X-Reason': 'closed by the operator'}).status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.channel().queue_declare('', exclusive=True)
        conn.process_data_events(time_limit=2)
    assert info.value.reply_code == 320
    assert info.value.reply_text == 'CONNECTION_FORCED - closed by the operator'


def test_users_vhosts_and_permissions_apply_at_once_and_survive_a_restart(own_broker, own_api):
    api = own_api
    port = own_broker.port
    assert api.put('/vhosts/apps', {'description': 'the apps', 'tags': 'a,b'}).status == 201
    assert api.put('/users/app', {'password': 's3cret', 'tags': ['management']}).status == 201
    url = f'amqp://app:s3cret@127.0.0.1:{port}/apps'
    # A user without a permission entry on the vhost is refused.
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(url))
    assert api.put('/permissions/apps/app', {'configure': '.*', 'write': '.*',
                                             'read': '.*'}).status == 201
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        conn.channel().queue_declare('kept', durable=True)
    assert api.put('/users/app', {'password': 'n3w', 'tags': 'management'}).status == 204
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.URLParameters(url))
    assert api.put('/users/gone', {'password': 'x', 'tags': ''}).status == 201
    assert own_broker.stop() == 0
    own_broker.start(port=port)
    api = Api(own_broker.api)
    assert api.get('/vhosts/apps')['description'] == 'the apps'
    assert api.get('/vhosts/apps')['tags'] == ['a', 'b']
    assert api.get('/permissions/apps/app')['configure'] == '.*'
    assert api.get('/users/app')['tags'] == ['management']
    new_url = f'amqp://app:n3w@127.0.0.1:{port}/apps'
    with pika.BlockingConnection(pika.URLParameters(new_url)) as conn:
        conn.channel().queue_declare('kept', passive=True)
    assert api.delete('/users/gone').status == 204
    assert api.delete('/vhosts/apps').status == 204
    assert own_broker.stop() == 0
    own_broker.start(port=port)
    api = Api(own_broker.api)
    assert api('GET', '/users/gone').status == 404
    assert api('GET', '/vhosts/apps').status == 404
    assert api('GET', '/permissions/apps/app').status == 404
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(new_url))


def test_a_password_hash_from_rabbitmq_logs_in(own_broker, own_api):
    # ref-hashed2's hash, as RabbitMQ 3.10 took it (its password: hashpw).
    hashed = 'JAP90myquk5LMocJ/aoSF4xVZA90ZQkkZ2uhZToFUYd2Icgy'
    assert own_api.put('/users/hashed', {
        'password_hash': hashed, 'hashing_algorithm': 'rabbit_password_hashing_sha256',
        'tags': 'monitoring'}).status == 201
    assert own_api.get('/users/hashed')['password_hash'] == hashed
    assert own_api.as_user('hashed', 'hashpw').get('/whoami') == {
        'name': 'hashed', 'tags': ['monitoring']}
    assert own_api.put('/users/bad', {'password_hash': 'not base64!'}).status == 400


def test_deleting_a_user_closes_its_connections(own_broker, own_api):
    own_api.put('/users/short', {'password': 'pw', 'tags': ''})
    own_api.put('/permissions/%2F/short', {'configure': '.*', 'write': '.*', 'read': '.*'})
    conn = pika.BlockingConnection(pika.URLParameters(
        f'amqp://short:pw@127.0.0.1:{own_broker.port}/'))
    assert own_api.delete('/users/short').status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.process_data_events(time_limit=2)
        conn.channel()
    assert info.value.reply_code == 320


def test_message_stats_count_and_rates_come_from_samples(api, broker, unique):
    params = pika.URLParameters(broker.url)
    params.client_properties = {'connection_name': unique}
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.confirm_delivery()

        def publish_and_read() -> float:
            for _ in range(20):
                ch.basic_publish('', unique, b'x')
            return api.get(f'/queues/%2F/{unique}')['message_stats']['publish_details']['rate']

        wait_until(publish_and_read, timeout=30, interval=0.5)
        ch.basic_get(unique, auto_ack=True)
        stats = api.get(f'/queues/%2F/{unique}')['message_stats']
        assert stats['publish'] >= 40
        assert stats['get_no_ack'] == 1
        name = next(c['name'] for c in api.get('/connections')
                    if c['user_provided_name'] == unique)
        channel = next(c for c in api.get('/channels')
                       if c['connection_details']['name'] == name)
        assert channel['confirm'] is True
        assert channel['message_stats']['publish'] == stats['publish']
        assert channel['message_stats']['confirm'] == stats['publish']
    overview = api.get('/overview')
    assert overview['churn_rates']['queue_created'] >= 1
    assert overview['message_stats']['publish'] >= stats['publish']


def test_health_checks_and_the_aliveness_test(api, broker):
    assert api.get('/health/checks/alarms') == {'status': 'ok'}
    assert api.get('/health/checks/local-alarms') == {'status': 'ok'}
    assert api.get(f'/health/checks/port-listener/{broker.port}') == {
        'status': 'ok', 'port': broker.port}
    failing = api('GET', '/health/checks/port-listener/1')
    assert failing.status == 503
    assert failing.json['status'] == 'failed' and failing.json['missing'] == 1
    assert broker.port in failing.json['ports']
    assert api.get('/health/checks/virtual-hosts') == {'status': 'ok'}
    assert api.get('/aliveness-test/%2F') == {'status': 'ok'}
    assert api('GET', '/aliveness-test/nope').status == 404


def test_a_memory_alarm_fails_the_alarm_checks_until_it_clears(broker_factory, unique):
    broker = broker_factory(extra_env={'LEVERET_MEMORY_HIGH_WATERMARK': str(1 << 20)}).start()
    api = Api(broker.api)
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        for _ in range(20):          # 1.25 MiB, above the 1 MiB watermark
            ch.basic_publish('', unique, b'x' * 65536)
        # The publisher is blocked now (it gets no replies): watch the node instead.
        wait_until(lambda: api.get('/nodes')[0]['mem_alarm'], timeout=30, interval=0.1)
        node = api.get('/nodes')[0]
        for check in ('/health/checks/alarms', '/health/checks/local-alarms'):
            failing = api('GET', check)
            assert (failing.status, failing.json) == (503, {
                'status': 'failed', 'reason': 'resource alarm(s) in effect in the cluster',
                'alarms': [{'node': node['name'], 'resource': 'memory'}]})
        assert api.delete(f'/queues/%2F/{unique}/contents').status == 204
        assert api.get('/nodes')[0]['mem_alarm'] is False
        assert api.get('/health/checks/alarms') == {'status': 'ok'}
        ch.queue_declare(unique, passive=True)      # unblocked: it answers again
