"""RabbitMQ's own management CLI, rabbitmqadmin 3.10 (the script Debian's
rabbitmq-server package installs; .ci/run installs it), pointed at Leveret."""

from __future__ import annotations

import json
import shutil
import subprocess

import pika
import pytest

from ..conftest import BrokerProcess

RABBITMQADMIN = shutil.which('rabbitmqadmin')


@pytest.fixture
def admin(own_broker: BrokerProcess):
    assert RABBITMQADMIN, 'rabbitmqadmin is not installed (.ci/run installs it)'

    def run(*args: str, stdin: bytes | None = None, check: bool = True) -> str:
        done = subprocess.run([RABBITMQADMIN, '-H', '127.0.0.1', '-P',
                               str(own_broker.management_port), *args],
                              input=stdin, capture_output=True, timeout=60)
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return (done.stdout + done.stderr).decode()
    return run


def rows(table: str) -> list[list[str]]:
    """The cells of rabbitmqadmin's ASCII table, header row first."""
    return [[cell.strip() for cell in line.strip('|').split('|')]
            for line in table.splitlines() if line.startswith('|')]


def test_declare_list_publish_get_purge_delete(admin, own_broker):
    assert admin('declare', 'queue', 'name=adm.q', 'durable=true').strip() == 'queue declared'
    assert admin('declare', 'exchange', 'name=adm.x', 'type=fanout') == 'exchange declared\n'
    assert admin('declare', 'binding', 'source=adm.x', 'destination=adm.q',
                 'routing_key=rk1') == 'binding declared\n'
    assert admin('publish', 'routing_key=adm.q', 'payload=hello') == 'Message published\n'
    assert admin('publish', 'exchange=adm.x', 'routing_key=any', 'payload=via fanout') \
        == 'Message published\n'
    assert admin('publish', 'routing_key=nowhere', 'payload=x') == \
        'Message published but NOT routed\n'
    assert admin('publish', 'routing_key=adm.q', stdin=b'\x00binary') == 'Message published\n'
    assert ['adm.q', '3'] in rows(admin('list', 'queues'))
    assert ['adm.x', 'fanout'] in rows(admin('list', 'exchanges'))
    assert ['adm.x', 'adm.q', 'rk1'] in rows(admin('list', 'bindings'))
    assert rows(admin('list', 'queues', 'name', 'messages', 'consumers'))[0] == [
        'name', 'messages', 'consumers']
    got = rows(admin('get', 'queue=adm.q', 'count=2'))
    assert got[0][:4] == ['routing_key', 'exchange', 'message_count', 'payload']
    assert [row[3] for row in got[1:]] == ['hello', 'via fanout']
    assert ['adm.q', '3'] in rows(admin('list', 'queues'))      # requeued, not dropped
    assert admin('purge', 'queue', 'name=adm.q') == 'queue purged\n'
    assert ['adm.q', '0'] in rows(admin('list', 'queues'))
    assert admin('delete', 'binding', 'source=adm.x', 'destination_type=queue',
                 'destination=adm.q', 'properties_key=rk1') == 'binding deleted\n'
    assert admin('delete', 'queue', 'name=adm.q') == 'queue deleted\n'
    assert admin('delete', 'exchange', 'name=adm.x') == 'exchange deleted\n'
    missing = admin('delete', 'queue', 'name=adm.q', check=False)
    assert '*** Not found: /api/queues/%2F/adm.q' in missing
    again = admin('declare', 'queue', 'name=adm.t', 'durable=false')
    assert again == 'queue declared\n'
    refused = admin('declare', 'queue', 'name=adm.t', 'durable=true', check=False)
    assert ("*** inequivalent arg 'durable' for queue 'adm.t' in vhost '/': received 'true' "
            "but current is 'false'") in refused


def test_list_connections_channels_consumers_users_vhosts_and_show_overview(admin,
                                                                             own_broker):
    params = pika.URLParameters(own_broker.url)
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.queue_declare('adm.c')
        ch.basic_consume('adm.c', lambda *a: None, consumer_tag='adm-tag')
        connections = rows(admin('list', 'connections'))
        assert connections[0] == ['name', 'user', 'channels']
        assert connections[1][1:] == ['guest', '1']
        assert connections[1][0].endswith(f' -> 127.0.0.1:{own_broker.port}')
        channels = rows(admin('list', 'channels'))
        assert channels[1] == [f'{connections[1][0]} (1)', 'guest']
        consumers = rows(admin('list', 'consumers'))
        assert consumers[0] == ['ack_required', 'active', 'activity_status', 'consumer_tag',
                                'consumer_timeout', 'exclusive', 'prefetch_count']
        assert consumers[1][3] == 'adm-tag'
    users = rows(admin('list', 'users'))
    assert users[0] == ['name', 'hashing_algorithm', 'password_hash', 'tags']
    assert users[1][0] == 'guest' and users[1][3] == 'administrator'
    assert rows(admin('list', 'vhosts')) == [['name', 'messages'], ['/', '0']]
    assert rows(admin('list', 'permissions'))[1] == ['/', '.*', '.*', 'guest', '.*']
    overview = rows(admin('show', 'overview'))
    assert overview[0] == ['rabbitmq_version', 'cluster_name', 'queue_totals.messages',
                           'object_totals.queues']
    assert overview[1][1].startswith('leveret@')
    assert rows(admin('list', 'nodes'))[1][1] == 'disc'


def test_export_and_import(admin, tmp_path, own_broker):
    admin('declare', 'queue', 'name=adm.kept', 'durable=true')
    exported = tmp_path / 'all.json'
    assert admin('export', str(exported)) == f'Exported definitions for 127.0.0.1 to ' \
                                             f'"{exported}"\n'
    document = json.loads(exported.read_text())
    assert 'adm.kept' in [q['name'] for q in document['queues']]
    admin('delete', 'queue', 'name=adm.kept')
    assert admin('import', str(exported)).startswith('Uploaded definitions from "127.0.0.1"')
    assert ['adm.kept', '0'] in rows(admin('list', 'queues'))


def test_a_wrong_password_is_access_refused(own_broker):
    done = subprocess.run([RABBITMQADMIN, '-H', '127.0.0.1', '-P',
                           str(own_broker.management_port), '-p', 'wrong', 'list', 'queues'],
                          capture_output=True, timeout=60)
    assert done.returncode == 1
    assert b'*** Access refused: /api/queues?columns=name,messages' in done.stderr
