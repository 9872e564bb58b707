"""``leveret ctl`` for what this issue adds: topic permissions, clearing
permissions, vhost and user limits, and an API served over HTTPS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pika
import pika.exceptions
import pytest

from ..conftest import ROOT, BrokerProcess
from .pki import Pki


def run_ctl(url: str, *args: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, '-m', 'leveret', 'ctl', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, 'LEVERET_CTL_URL': url, **(env or {})})
    assert done.returncode == expect, (args, done.stdout, done.stderr)
    assert 'Traceback' not in done.stderr
    return done.stdout + done.stderr


def test_ctl_sets_lists_and_clears_topic_permissions_and_limits(own_broker: BrokerProcess):
    ctl = lambda *args, **kw: run_ctl(own_broker.api, *args, **kw)  # noqa: E731
    ctl('add', 'user', 'app', 'app')
    ctl('set', 'permissions', 'app', '^app\\.', '.*', '.*')
    assert ctl('set', 'topic_permissions', 'app', 'amq.topic', '^app\\.', '.*') == \
        'topic permissions set\n'
    [entry] = json.loads(ctl('list', 'topic_permissions', '--format', 'json'))
    assert (entry['user'], entry['exchange'], entry['write']) == ('app', 'amq.topic', '^app\\.')
    assert ctl('set', 'vhost_limits', '{"max-connections": 5, "max-queues": 10}') == \
        'limits set\n'
    assert ctl('set', 'user_limits', 'app', '{"max-queues": 1}') == 'limits set\n'
    assert json.loads(ctl('list', 'vhost_limits', '--format', 'json')) == [
        {'vhost': '/', 'value': {'max-connections': 5, 'max-queues': 10}}]
    table = ctl('list', 'user_limits')
    assert 'app' in table and 'max-queues' in table
    with pika.BlockingConnection(pika.URLParameters(
            f'amqp://app:app@127.0.0.1:{own_broker.port}/%2F')) as conn:
        ch = conn.channel()
        ch.queue_declare('app.one')
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.queue_declare('app.two')
        assert "queue limit for user 'app' (1)" in info.value.reply_text
        ch = conn.channel()
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.basic_publish('amq.topic', 'other.key', b'')
        assert info.value.reply_code == 403
    assert 'limit' in ctl('set', 'vhost_limits', '{"max-bananas": 1}', expect=1)
    assert ctl('clear', 'user_limits', 'app') == 'user_limits cleared\n'
    assert ctl('clear', 'vhost_limits', 'max-queues') == 'vhost_limits cleared\n'
    assert json.loads(ctl('list', 'vhost_limits', '--format', 'json')) == [
        {'vhost': '/', 'value': {'max-connections': 5}}]
    assert ctl('clear', 'topic_permissions', 'app') == 'topic_permissions cleared\n'
    assert ctl('clear', 'permissions', 'app') == 'permissions cleared\n'
    assert ctl('list', 'topic_permissions') == 'no topic_permissions\n'
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.URLParameters(
            f'amqp://app:app@127.0.0.1:{own_broker.port}/%2F'))
    assert 'set user_limits USER' in ctl('set', 'user_limits', 'app', expect=2)


def test_ctl_talks_to_an_https_api_with_its_ca(broker_factory, tmp_path: Path):
    pki = Pki(tmp_path / 'pki')
    server = pki.issue('https')
    broker = broker_factory(extra_env={
        'LEVERET_MANAGEMENT_TLS_CERTFILE': str(server.cert),
        'LEVERET_MANAGEMENT_TLS_KEYFILE': str(server.key),
        'LEVERET_MANAGEMENT_TLS_PORT': '0', 'LEVERET_MANAGEMENT_PLAIN_LISTENER': 'false'}).start()
    url = f'https://localhost:{broker.management_tls_port}'
    assert 'amqp' in run_ctl(url, '--cacert', str(pki.cafile), 'status')
    # Without the CA the certificate is not trusted: unreachable, said in one line.
    out = run_ctl(url, 'status', expect=69)
    assert 'CERTIFICATE_VERIFY_FAILED' in out or 'certificate verify failed' in out
