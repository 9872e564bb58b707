"""Refusals as RabbitMQ 3.10 answers them: status, body, headers.

Bodies are RabbitMQ's (captured from 3.10.8); never a traceback, never a hang.
"""

from __future__ import annotations

import socket

import pika
import pytest

from ..conftest import BrokerProcess
from .client import Api, call

NOT_FOUND = {'error': 'Object Not Found', 'reason': 'Not Found'}


@pytest.fixture
def roles(own_api: Api) -> Api:
    """Users of each tag on a broker of the test's own, and a vhost v2 only guest uses."""
    api = own_api
    assert api.put('/vhosts/v2').status == 201
    for name, tags in (('mgmt', 'management'), ('monitor', 'monitoring'), ('notags', ''),
                       ('admin2', 'administrator')):
        assert api.put(f'/users/{name}', {'password': f'{name}-pw', 'tags': tags}).status == 201
        assert api.put(f'/permissions/%2F/{name}', {'configure': '^mine\\.', 'write': '.*',
                                                    'read': '.*'}).status == 201
    return api


def test_no_credentials_get_a_challenge_and_no_body(api):
    answer = api('GET', '/overview', user=None)
    assert answer.status == 401
    assert answer.body == b''
    assert answer.headers['www-authenticate'] == 'Basic realm="RabbitMQ Management"'


def test_a_wrong_password_or_an_unknown_user_is_a_failed_login(api):
    for user, password in (('guest', 'wrong'), ('nobody', 'x')):
        answer = api('GET', '/overview', user=user, password=password)
        assert (answer.status, answer.json) == (401, {'error': 'not_authorized',
                                                      'reason': 'Login failed'})
        assert 'www-authenticate' in answer.headers
    bearer = api('GET', '/overview', user=None, headers={'Authorization': 'Bearer abc'})
    assert bearer.status == 401 and bearer.json['reason'] == 'Login failed'
    garbage = api('GET', '/overview', user=None, headers={'Authorization': 'Basic !!!x'})
    assert (garbage.status, garbage.body) == (400, b'')


def test_a_user_without_tags_is_not_a_management_user(roles):
    answer = roles.as_user('notags', 'notags-pw')('GET', '/overview')
    assert (answer.status, answer.json) == (401, {'error': 'not_authorised',
                                                  'reason': 'Not management user'})
    assert 'www-authenticate' not in answer.headers


def test_a_management_user_sees_only_its_vhosts(roles):
    mgmt = roles.as_user('mgmt', 'mgmt-pw')
    assert roles.put('/queues/v2/q.other', {}).status == 201
    assert roles.put('/queues/%2F/mine.q', {}).status == 201
    answer = mgmt('GET', '/queues/v2')
    assert (answer.status, answer.json) == (401, {
        'error': 'not_authorised', 'reason': 'User not authorised to access virtual host'})
    assert mgmt('GET', '/queues/v2/q.other').status == 401
    assert {q['vhost'] for q in mgmt.get('/queues')} == {'/'}
    assert [v['name'] for v in mgmt.get('/vhosts')] == ['/']
    # Monitoring users read every vhost's objects.
    assert {q['vhost'] for q in roles.as_user('monitor', 'monitor-pw').get('/queues')} == {
        '/', 'v2'}


def test_only_administrators_change_users_vhosts_permissions_and_definitions(roles):
    for user in ('mgmt', 'monitor'):
        as_user = roles.as_user(user, f'{user}-pw')
        for method, path, body in (('PUT', '/users/x', {'password': 'x', 'tags': ''}),
                                   ('DELETE', '/users/guest', None),
                                   ('PUT', '/vhosts/x', {}),
                                   ('DELETE', '/vhosts/v2', None),
                                   ('PUT', '/permissions/%2F/guest',
                                    {'configure': '', 'write': '', 'read': ''}),
                                   ('GET', '/users', None),
                                   ('GET', '/definitions', None),
                                   ('POST', '/definitions', {})):
            answer = as_user(method, path, body)
            assert (answer.status, answer.json) == (401, {
                'error': 'not_authorised', 'reason': 'Not administrator user'}), (user, path)
    assert roles.get('/users/guest')['tags'] == ['administrator']
    nodes = roles.as_user('mgmt', 'mgmt-pw')('GET', '/nodes')
    assert (nodes.status, nodes.json['reason']) == (401, 'Not monitor user')
    assert roles.as_user('monitor', 'monitor-pw').get('/nodes')[0]['running'] is True


def test_configure_permissions_decide_who_declares_what(roles):
    mgmt = roles.as_user('mgmt', 'mgmt-pw')
    assert mgmt.put('/queues/%2F/mine.ok', {'durable': False}).status == 201
    refused = mgmt.put('/queues/%2F/other.q', {'durable': False})
    assert (refused.status, refused.json) == (401, {'error': 'not_authorised',
                                                    'reason': 'Access refused.'})
    assert roles.put('/queues/%2F/amq.reserved', {}).status == 401
    assert roles.delete('/exchanges/%2F/amq.direct').status == 401
    assert roles.delete('/exchanges/%2F/amq.default').status == 401


def test_a_user_closes_its_own_connections_only(roles, own_broker):
    import pika
    url = f'amqp://admin2:admin2-pw@127.0.0.1:{own_broker.port}/'
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        name = roles.get('/connections')[0]['name']
        path = '/connections/' + name.replace(' ', '%20').replace('>', '%3E')
        mgmt = roles.as_user('mgmt', 'mgmt-pw')
        assert mgmt.get('/connections') == []
        answer = mgmt('DELETE', path)
        assert (answer.status, answer.json) == (401, {
            'error': 'not_authorised', 'reason': 'User not authorised to access object'})
        assert conn.is_open
    finally:
        conn.close()


@pytest.mark.parametrize('path', ['/queues/nope', '/queues/nope/q', '/queues/%2F/no.such.q',
                                  '/exchanges/nope', '/exchanges/%2F/no.such.ex',
                                  '/vhosts/nope', '/users/nope', '/connections/nope',
                                  '/channels/nope', '/permissions/%2F/nope', '/nonexistent',
                                  '/bindings/%2F/e/no.such/q/nothing'])
def test_unknown_objects_are_404(api, path):
    answer = api('GET', path)
    assert (answer.status, answer.json) == (404, NOT_FOUND)


def test_declaring_in_an_unknown_vhost_and_other_404_bodies(api, unique):
    answer = api.put('/queues/nope/x', {'durable': True})
    assert (answer.status, answer.json) == (404, {'error': 'not_found',
                                                  'reason': 'vhost_not_found'})
    answer = api.post('/queues/%2F/no.such.q/get', {'count': 1, 'ackmode': 'ack_requeue_true',
                                                    'encoding': 'auto'})
    assert (answer.status, answer.json) == (404, {
        'error': 'not_found', 'reason': "NOT_FOUND - no queue 'no.such.q' in vhost '/'"})
    assert api.put(f'/exchanges/%2F/{unique}', {'type': 'direct'}).status == 201
    answer = api.post(f'/bindings/%2F/e/{unique}/q/no.such.q', {'routing_key': 'k'})
    assert (answer.status, answer.json) == (404, {
        'error': 'not_found', 'reason': "no queue 'no.such.q' in vhost '/'"})
    answer = api.delete(f'/queues/%2F/{unique}')
    assert (answer.status, answer.json) == (404, NOT_FOUND)
    answer = api.post('/exchanges/%2F/no.such.exchange/publish', {
        'properties': {}, 'routing_key': 'k', 'payload': 'x', 'payload_encoding': 'string'})
    assert (answer.status, answer.json) == (400, {
        'error': 'bad_request',
        'reason': "404 NOT_FOUND - no exchange 'no.such.exchange' in vhost '/'"})


@pytest.mark.parametrize('method, path, allow', [
    ('DELETE', '/overview', 'HEAD, GET, OPTIONS'),
    ('POST', '/overview', 'HEAD, GET, OPTIONS'),
    ('POST', '/vhosts', 'HEAD, GET, OPTIONS'),
    ('POST', '/queues/%2F/q.classic', 'HEAD, GET, PUT, DELETE, OPTIONS'),
    ('PATCH', '/queues/%2F/q.classic', 'HEAD, GET, PUT, DELETE, OPTIONS'),
    ('PUT', '/connections/x', 'HEAD, GET, DELETE, OPTIONS'),
    ('GET', '/queues/%2F/q.scratch/get', 'POST, OPTIONS'),
])
def test_a_method_a_resource_lacks_is_405_with_allow(api, method, path, allow):
    answer = api(method, path, {} if method in ('POST', 'PUT', 'PATCH') else None)
    assert (answer.status, answer.headers['allow'], answer.body) == (405, allow, b'')


def test_options_and_head(api):
    answer = api('OPTIONS', '/queues')
    assert (answer.status, answer.headers['allow']) == (200, 'HEAD, GET, OPTIONS')
    head = api('HEAD', '/overview')
    assert head.status == 200 and head.body == b''


@pytest.mark.parametrize('method, path, raw', [
    ('PUT', '/queues/%2F/t.badjson', b'{"durable": tru'),
    ('PUT', '/exchanges/%2F/t.badjson', b'[1,'),
    ('PUT', '/users/t-badjson', b'{'),
    ('POST', '/exchanges/%2F/amq.default/publish', b'{not json'),
    ('POST', '/queues/%2F/t.badjson/get', b'{bad'),
    ('POST', '/bindings/%2F/e/amq.direct/q/t.badjson', b'{x'),
    ('POST', '/definitions', b'{"users": ['),
])
def test_malformed_json_is_400_not_json(api, method, path, raw):
    if 'get' in path or 'bindings' in path:
        assert api.put('/queues/%2F/t.badjson', {}).status in (201, 204)
    answer = api(method, path, raw=raw)
    assert (answer.status, answer.json) == (400, {'error': 'bad_request', 'reason': 'not_json'})


@pytest.mark.parametrize('query, body', [
    ('page=0&page_size=2', {'error': 'invalid_pagination_parameters',
                            'reason': 'Invalid pagination parameters: page number 0, '
                                      'page size 2'}),
    ('page=1&page_size=1000', {'error': 'invalid_pagination_parameters',
                               'reason': 'Invalid pagination parameters: page number 1, '
                                         'page size 1000'}),
    ('page=1&page_size=501', {'error': 'invalid_pagination_parameters',
                              'reason': 'Invalid pagination parameters: page number 1, '
                                        'page size 501'}),
    ('page=abc', {'error': 'bad_request', 'reason': 'Pagination parameters are invalid'}),
])
def test_bad_paging_parameters(api, query, body):
    answer = api('GET', f'/queues?{query}')
    assert (answer.status, answer.json) == (400, body)


def test_a_page_past_the_end(api):
    total = len(api.get('/queues'))
    answer = api('GET', f'/queues?page={total + 5}&page_size=1')
    assert answer.status == 400
    assert answer.json == {'error': 'page_out_of_range',
                           'reason': f'Page out of range, page: {total + 5} page size: 1, '
                                     f'len: {total}'}


def test_bad_bodies_get_rabbitmqs_reasons(api, unique):
    answer = api.post('/exchanges/%2F/amq.default/publish', {'routing_key': 'x',
                                                             'payload': 'x'})
    assert answer.json == {'error': 'bad_request', 'reason':
                           '[{key_missing,properties},{key_missing,payload_encoding}]'}
    answer = api.post('/exchanges/%2F/amq.default/publish', {
        'properties': {}, 'routing_key': 'x', 'payload': 'x', 'payload_encoding': 'hex'})
    assert answer.json == {'error': 'bad_request', 'reason': ['unsupported_encoding', 'hex']}
    answer = api.post('/exchanges/%2F/amq.default/publish', {
        'properties': {'delivery_mode': 'two'}, 'routing_key': 'x', 'payload': 'x',
        'payload_encoding': 'string'})
    assert answer.json == {'error': 'bad_request', 'reason': ['not_int', 'delivery_mode']}
    assert api.put(f'/queues/%2F/{unique}', {'durable': True,
                                             'arguments': {'x-max-length': 5}}).status == 201
    answer = api.put(f'/queues/%2F/{unique}', {'durable': True,
                                               'arguments': {'x-max-length': 6}})
    assert answer.json == {'error': 'bad_request', 'reason':
                           f"inequivalent arg 'x-max-length' for queue '{unique}' in vhost "
                           f"'/': received '6' but current is '5'"}
    answer = api.put(f'/queues/%2F/{unique}', {'durable': False})
    assert answer.json['reason'] == (f"inequivalent arg 'durable' for queue '{unique}' in "
                                     f"vhost '/': received 'false' but current is 'true'")
    answer = api.put(f'/queues/%2F/{unique}.bad', {'arguments': {'x-max-length': 'ten'}})
    assert answer.status == 400 and "invalid arg 'x-max-length'" in answer.json['reason']
    answer = api.put(f'/exchanges/%2F/{unique}', {'type': 'nosuchtype'})
    assert answer.json == {'error': 'bad_request',
                           'reason': "unknown exchange type 'nosuchtype'"}
    answer = api.put('/permissions/%2F/nobody-at-all', {'configure': '.*', 'write': '.*',
                                                        'read': '.*'})
    assert answer.json == {'error': 'bad_request', 'reason': 'vhost_or_user_not_found'}
    answer = api.put('/permissions/%2F/guest', {'configure': '.*'})
    assert answer.json == {'error': 'bad_request',
                           'reason': '[{key_missing,write},{key_missing,read}]'}
    answer = api.post(f'/queues/%2F/{unique}/get', {'count': 1, 'encoding': 'auto'})
    assert answer.json == {'error': 'bad_request', 'reason': '[{key_missing,ackmode}]'}
    answer = api.post(f'/queues/%2F/{unique}/get', {'count': 1, 'ackmode': 'ack_requeue_true',
                                                    'encoding': 'hex'})
    assert answer.json == {'error': 'bad_request',
                           'reason': 'Unsupported encoding. Please use auto or base64.'}


def test_the_api_is_on_its_own_port_and_nothing_else_is_served(api):
    # Beside /api, the port serves the dashboard (/, /login, /static/...) only.
    root = api.base.rsplit('/api', 1)[0]
    assert call(root, 'GET', '/nothing-here').status == 404
    page = call(root, 'GET', '/')           # the dashboard's login, redirected to
    assert page.status == 200 and b'name="password"' in page.body


def test_without_the_dashboard_nothing_but_the_api_is_served(fresh_broker):
    fresh_broker.extra_env = {'LEVERET_DASHBOARD_ENABLED': 'false'}
    broker = fresh_broker.start()
    root = broker.api.rsplit('/api', 1)[0]
    assert call(root, 'GET', '/').status == 404
    assert call(root, 'GET', '/login').status == 404
    assert call(root, 'GET', '/api/overview').status == 200


def test_management_enabled_false_serves_no_api(tmp_path):
    with socket.socket() as probe:          # a port nothing listens on, for the broker to leave
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    proc = BrokerProcess(tmp_path / 'data', tmp_path / 'broker.log',
                         extra_env={'LEVERET_MANAGEMENT_ENABLED': 'false'})
    try:
        proc.start(management_port=port)
        # The AMQP side works; the API's port stays closed.
        pika.BlockingConnection(pika.URLParameters(proc.url)).close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(('127.0.0.1', port), timeout=5).close()
        assert 'management API at' not in proc.log()
    finally:
        proc.kill()


def test_values_amqp_cannot_carry_are_refused_before_anything_changes(own_broker, own_api):
    api = own_api
    huge = {'x-foo': 2 ** 64}                   # JSON carries it, a field table cannot
    answer = api.put('/queues/%2F/t.huge', {'durable': True, 'arguments': huge})
    assert answer.status == 400
    assert answer.json['reason'].startswith('arguments cannot be stored: ')
    assert api('GET', '/queues/%2F/t.huge').status == 404
    answer = api.put('/exchanges/%2F/t.huge', {'type': 'direct', 'arguments': huge})
    assert answer.status == 400 and api('GET', '/exchanges/%2F/t.huge').status == 404
    assert api.put('/queues/%2F/t.q', {}).status == 201
    answer = api.post('/bindings/%2F/e/amq.direct/q/t.q', {'routing_key': 'k',
                                                           'arguments': huge})
    assert answer.status == 400 and api.get('/bindings/%2F/e/amq.direct/q/t.q') == []
    publish = {'routing_key': 't.q', 'payload': 'x', 'payload_encoding': 'string'}
    answer = api.post('/exchanges/%2F/amq.default/publish', {
        **publish, 'properties': {'priority': 999}})
    assert answer.json == {'error': 'bad_request',
                           'reason': 'priority must be between 0 and 255'}
    answer = api.post('/exchanges/%2F/amq.default/publish', {
        **publish, 'properties': {'headers': huge}})
    assert answer.status == 400
    assert answer.json['reason'].startswith('properties cannot be encoded: ')
    assert api.get('/queues/%2F/t.q')['messages'] == 0
    tags_reason = {'error': 'bad_request',
                   'reason': 'tags must be a comma-separated string or a list of strings'}
    assert api.put('/users/t.u', {'password': 'x', 'tags': 5}).json == tags_reason
    assert api('GET', '/users/t.u').status == 404
    assert api.put('/vhosts/t.v', {'tags': [5]}).json == tags_reason
    assert api('GET', '/vhosts/t.v').status == 404
    answer = api.put('/permissions/%2F/guest', {'configure': '(', 'write': '.*', 'read': '.*'})
    assert answer.status == 400
    assert answer.json['reason'].startswith("invalid regular expression '(': ")
    assert api.get('/permissions/%2F/guest')['configure'] == '.*'
    assert 'Traceback' not in own_broker.log()


@pytest.mark.parametrize('item', [
    {'exchanges': [{'name': 't.x', 'vhost': 'whole', 'type': 'direct', 'arguments': 5}]},
    {'exchanges': [{'name': 't.x', 'vhost': 'whole', 'type': 'direct',
                    'arguments': {'x-n': 2 ** 64}}]},
    {'bindings': [{'source': 'amq.direct', 'vhost': 'whole', 'destination': 'whole.q',
                   'destination_type': 'queue', 'routing_key': '', 'arguments': {'x': 2 ** 64}}]},
    {'users': [{'name': 't.u', 'password_hash': '', 'tags': 5}]},
    {'permissions': [{'user': 'guest', 'vhost': 'whole', 'configure': '[', 'write': '',
                      'read': ''}]},
    # amq.topic exists with no alternate exchange: an import cannot give it one.
    {'exchanges': [{'name': 'ex.alt', 'vhost': '/', 'type': 'topic', 'durable': True,
                    'auto_delete': False, 'internal': False,
                    'arguments': {'alternate-exchange': 'amq.fanout'}}]},
])
def test_an_import_with_one_bad_item_applies_none_of_the_others(own_broker, own_api, item):
    api = own_api
    assert api.put('/exchanges/%2F/ex.alt', {'type': 'topic'}).status == 201
    document = {'vhosts': [{'name': 'whole'}],
                'queues': [{'name': 'whole.q', 'vhost': 'whole', 'durable': True,
                            'auto_delete': False, 'arguments': {}}], **item}
    answer = api.post('/definitions', document)
    assert answer.status == 400, answer.json
    assert api('GET', '/vhosts/whole').status == 404
    assert api.get('/exchanges/%2F/ex.alt')['arguments'] == {}
    assert 'Traceback' not in own_broker.log()
