"""``leveret ctl`` against a running broker: every command, its tables and JSON,
and its exit codes (0 done, 1 refused, 2 usage, 69 unreachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pika
import pytest

from ..conftest import ROOT, BrokerProcess
from .conftest import DATA


@pytest.fixture
def ctl(own_broker: BrokerProcess):
    def run(*args: str, stdin: str | None = None, expect: int = 0,
            env: dict[str, str] | None = None) -> str:
        done = subprocess.run([sys.executable, '-m', 'leveret', 'ctl', *args], cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=60,
                              env={**os.environ, 'LEVERET_CTL_URL': own_broker.api,
                                   **(env or {})})
        assert done.returncode == expect, (args, done.stdout, done.stderr)
        assert 'Traceback' not in done.stderr
        return done.stdout + done.stderr
    return run


def test_declare_list_publish_get_purge_and_delete(ctl):
    assert ctl('declare', 'queue', 'jobs', '--arguments', '{"x-max-length": 10}') == \
        'queue declared\n'
    assert ctl('declare', 'exchange', 'events', '--type', 'topic') == 'exchange declared\n'
    assert ctl('declare', 'binding', 'events', 'jobs', '--routing-key', 'job.*') == \
        'binding declared\n'
    assert ctl('publish', 'jobs', 'first') == 'message published\n'
    assert ctl('publish', '--exchange', 'events', 'job.new', stdin='second') == \
        'message published\n'
    assert ctl('publish', 'nowhere', 'x') == 'message published but not routed\n'
    lines = ctl('list', 'queues').splitlines()
    assert lines[0].split() == ['vhost', 'name', 'type', 'durable', 'messages_ready',
                                'messages_unacknowledged', 'consumers']
    assert lines[1].split() == ['/', 'jobs', 'classic', 'true', '2', '0', '0']
    # Columns are aligned: every cell of a column starts at its header.
    assert lines[1].index('jobs') == lines[0].index('name')
    assert ctl('list', 'queues', 'name', 'arguments.x-max-length').splitlines()[1].split() == [
        'jobs', '10']
    rows = json.loads(ctl('list', 'bindings', '--format', 'json'))
    assert {(b['source'], b['destination'], b['routing_key']) for b in rows} >= {
        ('events', 'jobs', 'job.*')}
    peek = ctl('get', 'jobs', '--count', '5', '--requeue').splitlines()
    assert [line.split()[-1] for line in peek[1:]] == ['first', 'second']
    taken = json.loads(ctl('--format', 'json', 'get', 'jobs'))
    assert [m['payload'] for m in taken] == ['first']
    assert ctl('purge', 'queue', 'jobs') == 'queue purged\n'
    assert ctl('get', 'jobs') == 'queue is empty\n'
    assert ctl('delete', 'queue', 'jobs') == 'queue deleted\n'
    assert ctl('delete', 'exchange', 'events') == 'exchange deleted\n'
    assert ctl('list', 'exchanges', 'name').split()[1:] == [
        'amq.direct', 'amq.fanout', 'amq.headers', 'amq.match', 'amq.topic']


def test_users_vhosts_tags_and_permissions(ctl, own_broker):
    assert ctl('add', 'vhost', 'apps', '--description', 'the apps') == 'vhost added\n'
    assert ctl('add', 'user', 'app', 's3cret', '--tags', 'management') == 'user added\n'
    assert ctl('set', 'permissions', '--vhost', 'apps', 'app', '.*', '.*', '.*') == \
        'permissions set\n'
    assert ctl('list', 'permissions', '--vhost', 'apps').splitlines()[1].split() == [
        'apps', 'app', '.*', '.*', '.*']
    url = f'amqp://app:s3cret@127.0.0.1:{own_broker.port}/apps'
    pika.BlockingConnection(pika.URLParameters(url)).close()
    assert ctl('set', 'tags', 'app', 'monitoring', 'policymaker') == 'tags set\n'
    users = json.loads(ctl('list', 'users', '--format', 'json'))
    assert {u['name']: u['tags'] for u in users}['app'] == ['monitoring', 'policymaker']
    pika.BlockingConnection(pika.URLParameters(url)).close()     # the password is kept
    assert ctl('change', 'password', 'app', 'n3w') == 'password changed\n'
    new = f'amqp://app:n3w@127.0.0.1:{own_broker.port}/apps'
    pika.BlockingConnection(pika.URLParameters(new)).close()
    assert ctl('--user', 'app', '--password', 'n3w', 'list', 'vhosts', 'name').split() == [
        'name', '/', 'apps']
    listed = ctl('list', 'vhosts').splitlines()
    assert listed[2].split()[:3] == ['apps', 'the', 'apps']
    assert ctl('delete', 'user', 'app') == 'user deleted\n'
    assert ctl('delete', 'vhost', 'apps') == 'vhost deleted\n'
    assert 'apps' not in ctl('list', 'vhosts')


def test_connections_are_listed_and_closed_with_a_reason(ctl, own_broker):
    params = pika.URLParameters(own_broker.url)
    params.client_properties = {'connection_name': 'ctl-victim'}
    conn = pika.BlockingConnection(params)
    conn.channel()
    row = json.loads(ctl('list', 'connections', '--format', 'json'))[0]
    assert row['user_provided_name'] == 'ctl-victim'
    assert 'ctl-victim' in ctl('list', 'connections')
    assert ctl('list', 'channels').splitlines()[1].split()[-5:] == ['/', '0', '0', '0',
                                                                     'false', 'false'][-5:]
    assert ctl('close', 'connection', row['name'], '--reason', 'maintenance') == \
        'connection closed\n'
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.process_data_events(time_limit=2)
        conn.channel()
    assert info.value.reply_text == 'CONNECTION_FORCED - maintenance'


def test_consumers_exchange_bindings_and_credentials_from_the_environment(ctl, own_broker):
    assert ctl('declare', 'queue', 'work') == 'queue declared\n'
    assert ctl('declare', 'exchange', 'front', '--type', 'direct') == 'exchange declared\n'
    assert ctl('declare', 'exchange', 'back', '--type', 'fanout') == 'exchange declared\n'
    assert ctl('declare', 'binding', 'front', 'back', '--routing-key', 'k',
               '--destination-type', 'exchange') == 'binding declared\n'
    assert ctl('declare', 'binding', 'back', 'work') == 'binding declared\n'
    rows = ctl('list', 'bindings', 'source', 'destination_type', 'destination').splitlines()
    assert ['front', 'exchange', 'back'] in [row.split() for row in rows[1:]]
    assert ctl('publish', '--exchange', 'front', 'k', 'through') == 'message published\n'
    assert ctl('get', 'work', '--requeue').splitlines()[1].split()[-1] == 'through'
    with pika.BlockingConnection(pika.URLParameters(own_broker.url)) as conn:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=3)
        ch.basic_consume('work', lambda *a: None, consumer_tag='ctl-consumer')
        rows = [row.split() for row in ctl('list', 'consumers').splitlines()]
        assert rows[0][:3] == ['queue.vhost', 'queue.name', 'consumer_tag']
        assert rows[1][:3] == ['/', 'work', 'ctl-consumer']
        assert rows[1][-4:] == ['true', '3', 'false', 'true']
    assert ctl('add', 'user', 'ops', 'opspw', '--tags', 'administrator') == 'user added\n'
    as_ops = {'LEVERET_CTL_USER': 'ops', 'LEVERET_CTL_PASSWORD': 'opspw'}
    assert ctl('list', 'users', 'name', env=as_ops).split()[1:] == ['guest', 'ops']
    wrong = ctl('list', 'users', env={**as_ops, 'LEVERET_CTL_PASSWORD': 'no'}, expect=1)
    assert wrong == 'leveret ctl: refused: Login failed (401)\n'


def test_status_and_definitions(ctl, tmp_path):
    status = dict(line.split(None, 1) for line in ctl('status').splitlines())
    assert status['product'].startswith('Leveret ')
    assert status['queues'] == '0'
    assert 'amqp 127.0.0.1:' in status['listeners']
    assert json.loads(ctl('status', '--format', 'json'))['connections'] == 0
    imported = ctl('import', 'definitions', str(DATA / 'definitions-rabbitmq-3.10.json'))
    assert imported.splitlines()[0].startswith('definitions imported from ')
    assert "  not applied: policy 'ref-policy' in vhost '/': not applied, policies are not " \
           "implemented" in imported.splitlines()
    out = tmp_path / 'defs.json'
    assert ctl('export', 'definitions', str(out)) == f'definitions exported to {out}\n'
    assert 'q.classic' in [q['name'] for q in json.loads(out.read_text())['queues']]
    nowhere = tmp_path / 'no-such-dir' / 'defs.json'
    assert ctl('export', 'definitions', str(nowhere), expect=2) == \
        f'leveret ctl: cannot write {nowhere}: No such file or directory\n'
    assert ctl('import', 'definitions', str(nowhere), expect=2) == \
        f'leveret ctl: cannot read {nowhere}: No such file or directory\n'


def test_exit_codes(ctl, own_broker):
    refused = ctl('delete', 'queue', 'no-such-queue', expect=1)
    assert refused == 'leveret ctl: refused: not found: /queues/%2F/no-such-queue (404)\n'
    refused = ctl('declare', 'exchange', 'x', '--type', 'nosuchtype', expect=1)
    assert refused == "leveret ctl: refused: unknown exchange type 'nosuchtype' (400)\n"
    wrong = ctl('--password', 'wrong', 'list', 'queues', expect=1)
    assert wrong == 'leveret ctl: refused: Login failed (401)\n'
    assert 'invalid choice' in ctl('list', 'nothings', expect=2)
    assert 'must be JSON' in ctl('declare', 'queue', 'q', '--arguments', '{x', expect=2)
    unreachable = ctl('status', expect=69, env={'LEVERET_CTL_URL': 'http://127.0.0.1:1'})
    assert unreachable.startswith('leveret ctl: cannot reach http://127.0.0.1:1/api')
    amqp = f'http://127.0.0.1:{own_broker.port}'         # something that is not HTTP
    assert ctl('status', expect=69, env={'LEVERET_CTL_URL': amqp}) == \
        f'leveret ctl: cannot reach {amqp}/api: the answer is not HTTP\n'
    assert "--url must be an http:// or https:// URL, not 'localhost:15672'" in ctl(
        'status', expect=2, env={'LEVERET_CTL_URL': 'localhost:15672'})


def test_a_reader_that_stops_early_is_no_error(own_broker):
    read, write = os.pipe()
    os.close(read)                  # every write to stdout fails with EPIPE
    try:
        done = subprocess.run([sys.executable, '-m', 'leveret', 'ctl', 'list', 'exchanges'],
                              cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True,
                              timeout=60, env={**os.environ, 'LEVERET_CTL_URL': own_broker.api})
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, '')
