"""Definitions in RabbitMQ's format: a file exported from RabbitMQ 3.10 imports
and comes back equal, policies and parameters are reported item by item,
an import that cannot be applied whole applies nothing."""

from __future__ import annotations

import json

import pika

from .client import Api
from .conftest import DATA

RABBITMQ = json.loads((DATA / 'definitions-rabbitmq-3.10.json').read_text())
#: The parts Leveret implements (policies and parameters it reports instead).
COMPARED = ('users', 'vhosts', 'permissions', 'topic_permissions', 'queues', 'exchanges',
            'bindings')


def canonical(items: list[dict]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def test_a_rabbitmq_export_imports_and_comes_back_equal(own_broker, own_api):
    answer = own_api.post('/definitions', RABBITMQ)
    assert answer.status == 200
    report = answer.json['not_applied']
    assert "policy 'ref-policy' in vhost '/': not applied, policies are not implemented" \
        in report
    assert "policy 'v2-ttl' in vhost 'v2': not applied, policies are not implemented" in report
    assert any(line.startswith("global_parameter 'internal_cluster_id'") for line in report)
    assert len(report) == len(RABBITMQ['policies']) + len(RABBITMQ['global_parameters'])
    exported = own_api.get('/definitions')
    for key in COMPARED:
        want = RABBITMQ[key]
        got = exported[key]
        if key == 'users':
            # guest was there already; the imported one replaced it.
            want = [dict(u) for u in want]
        assert canonical(got) == canonical(want), key
    # The users keep RabbitMQ's hashes: they log in with their RabbitMQ passwords.
    assert own_api.as_user('ref-admin', 'ref-admin-pw').get('/whoami')['tags'] == [
        'administrator']
    with pika.BlockingConnection(pika.URLParameters(
            f'amqp://ref-monitor:ref-monitor-pw@127.0.0.1:{own_broker.port}/')) as conn:
        conn.channel().queue_declare('q.classic', passive=True)
    # ... and everything survives a restart.
    assert own_broker.stop() == 0
    own_broker.start(port=own_broker.port)
    again = Api(own_broker.api).get('/definitions')
    for key in COMPARED:
        # Non-durable queues and exchanges do not survive a restart.
        want = [i for i in exported[key] if i.get('durable', True)
                and not i.get('auto_delete')]
        if key == 'bindings':
            gone = {q['name'] for q in exported['queues'] if not q['durable']}
            want = [b for b in exported[key] if b['destination'] not in gone]
        assert canonical(again[key]) == canonical(want), key


def test_one_vhosts_definitions(own_api):
    assert own_api.post('/definitions', RABBITMQ).status == 200
    scoped = own_api.get('/definitions/v2')
    assert set(scoped) == {'rabbit_version', 'parameters', 'policies', 'queues', 'exchanges',
                           'bindings'}
    assert [q['name'] for q in scoped['queues']] == ['v2.q']
    assert 'vhost' not in scoped['queues'][0]
    assert own_api('GET', '/definitions/nope').json == {'error': 'bad_request',
                                                         'reason': 'vhost_not_found'}
    scoped['queues'][0]['name'] = 'v2.copy'
    assert own_api.post('/definitions/v2', scoped).status == 204
    assert own_api.get('/queues/v2/v2.copy')['vhost'] == 'v2'


def test_an_import_that_cannot_be_applied_whole_applies_nothing(own_api):
    document = {
        'vhosts': [{'name': 'half'}],
        'queues': [{'name': 'half.q', 'vhost': 'half', 'durable': True, 'auto_delete': False,
                    'arguments': {}}],
        'bindings': [{'source': 'no.such.exchange', 'vhost': 'half', 'destination': 'half.q',
                      'destination_type': 'queue', 'routing_key': '', 'arguments': {}}],
    }
    answer = own_api.post('/definitions', document)
    assert answer.status == 400
    assert 'no.such.exchange' in answer.json['reason']
    assert own_api('GET', '/vhosts/half').status == 404
    bad_args = {'queues': [{'name': 'q.bad', 'vhost': '/', 'durable': True,
                            'arguments': {'x-max-length': 'ten'}}]}
    answer = own_api.post('/definitions', bad_args)
    assert answer.status == 400 and "invalid arg 'x-max-length'" in answer.json['reason']
    assert own_api('GET', '/queues/%2F/q.bad').status == 404


def test_load_definitions_applies_a_file_at_start(broker_factory, tmp_path):
    path = tmp_path / 'defs.json'
    path.write_text(json.dumps(RABBITMQ))
    broker = broker_factory(extra_env={'LEVERET_LOAD_DEFINITIONS': str(path)}).start()
    api = Api(broker.api, 'ref-admin', 'ref-admin-pw')
    assert {q['name'] for q in api.get('/queues/v2')} == {'v2.q'}
    assert "policy 'ref-policy' in vhost '/': not applied" in broker.log()


def test_what_leveret_lacks_is_reported_item_by_item_and_the_rest_applied(own_api):
    document = {
        'vhosts': [{'name': 'lacking'}],
        'users': [{'name': 'md5user', 'password_hash': 'AAAAAA==', 'tags': [],
                   'hashing_algorithm': 'rabbit_password_hashing_md5'}],
        'parameters': [{'vhost': 'lacking', 'component': 'federation-upstream',
                        'name': 'upstream', 'value': {'uri': 'amqp://elsewhere'}},
                       {'vhost': '/', 'component': 'shovel', 'name': 'move-it',
                        'value': {'src-queue': 'a', 'dest-queue': 'b'}}],
        'queues': [{'name': 'lacking.q', 'vhost': 'lacking', 'durable': True,
                    'auto_delete': False, 'arguments': {}}],
        'federation_upstreams': [],
    }
    answer = own_api.post('/definitions', document)
    assert answer.status == 200
    assert sorted(answer.json['not_applied']) == sorted([
        "'federation_upstreams': unknown key, ignored",
        "parameter 'upstream' in vhost 'lacking': not applied, runtime parameters are not "
        "implemented",
        "parameter 'move-it' in vhost '/': not applied, runtime parameters are not implemented",
        "user 'md5user': not applied, hashing algorithm rabbit_password_hashing_md5 is not "
        "implemented (only rabbit_password_hashing_sha256)",
    ])
    assert own_api.get('/queues/lacking/lacking.q')['durable'] is True
    assert own_api('GET', '/users/md5user').status == 404
    assert own_api.get('/definitions')['parameters'] == []
