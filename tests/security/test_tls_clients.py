"""Real clients over amqps, with and without client certificates: pika
(ssl_options), aio-pika (amqps:// with cafile, certfile, keyfile), kombu and
Celery (broker_use_ssl and amqps://), the Leveret client and the bundled
worker."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import aio_pika
import aiormq.exceptions
import kombu
import pika
import pika.credentials
import pika.exceptions
import pytest

from ..client_fixtures import close_celery_client
from ..conftest import ROOT, BrokerProcess
from ..processes import Background
from .pki import Files, Pki, broker_env

APPS = Path(__file__).resolve().parent / 'apps'


@pytest.fixture(scope='module')
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def client_cert(pki: Pki) -> Files:
    return pki.issue('client', 'client.example', common_name='guest')


def start(tmp_path_factory: pytest.TempPathFactory, pki: Pki, **settings: str
          ) -> Iterator[BrokerProcess]:
    base = tmp_path_factory.mktemp('tls-broker')
    server = pki.issue(f'server-{uuid.uuid4().hex[:6]}')
    proc = BrokerProcess(base / 'data', base / 'broker.log',
                         extra_env=broker_env(server, pki, **settings)).start()
    yield proc
    proc.kill()


@pytest.fixture(scope='module')
def broker(tmp_path_factory, pki) -> Iterator[BrokerProcess]:
    """verify_peer: a client certificate is checked when one is sent."""
    yield from start(tmp_path_factory, pki, tls_verify='verify_peer')


@pytest.fixture(scope='module')
def strict_broker(tmp_path_factory, pki) -> Iterator[BrokerProcess]:
    """fail_if_no_peer_cert: no certificate, no connection."""
    yield from start(tmp_path_factory, pki, tls_verify='verify_peer',
                     tls_fail_if_no_peer_cert='true')


def amqps(broker: BrokerProcess, pki: Pki, client: Files | None = None,
          user: str = 'guest:guest@', **query: str) -> str:
    params = {'cafile': str(pki.cafile), **query}
    if client is not None:
        params.update(certfile=str(client.cert), keyfile=str(client.key))
    return (f'amqps://{user}localhost:{broker.tls_port}/?'
            + '&'.join(f'{k}={quote(v)}' for k, v in params.items()))


def aio_round_trip(url: str) -> bytes:
    async def run() -> bytes:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue('', exclusive=True)
            await channel.default_exchange.publish(aio_pika.Message(b'aio over tls'),
                                                   queue.name)
            message = await queue.get(timeout=5)
            await message.ack()
            return message.body
    return asyncio.run(run())


# --- pika -------------------------------------------------------------------------------


def pika_round_trip(broker: BrokerProcess, pki: Pki, client: Files | None = None,
                    credentials: pika.credentials.ExternalCredentials | None = None) -> bytes:
    params = pika.ConnectionParameters(
        'localhost', broker.tls_port,
        credentials=credentials or pika.PlainCredentials('guest', 'guest'),
        ssl_options=pika.SSLOptions(pki.client_context(client), 'localhost'))
    with pika.BlockingConnection(params) as conn:
        channel = conn.channel()
        queue = channel.queue_declare('', exclusive=True).method.queue
        channel.basic_publish('', queue, b'pika over tls')
        _, _, body = channel.basic_get(queue, auto_ack=True)
        return body


def test_pika_with_and_without_a_client_certificate(broker, strict_broker, pki,
                                                    client_cert):
    assert pika_round_trip(broker, pki) == b'pika over tls'
    assert pika_round_trip(broker, pki, client_cert) == b'pika over tls'
    assert pika_round_trip(strict_broker, pki, client_cert) == b'pika over tls'
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_round_trip(strict_broker, pki)


def test_pika_logs_in_with_external_only_with_a_client_certificate(broker, strict_broker,
                                                                  pki, client_cert):
    external = pika.credentials.ExternalCredentials()
    assert pika_round_trip(strict_broker, pki, client_cert, external) == b'pika over tls'
    # Without a certificate EXTERNAL is not offered, and pika has nothing else.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_round_trip(broker, pki, None, external)


# --- aio-pika / aiormq ------------------------------------------------------------------


def test_aio_pika_with_and_without_a_client_certificate(broker, strict_broker, pki,
                                                        client_cert):
    assert aio_round_trip(amqps(broker, pki)) == b'aio over tls'
    assert aio_round_trip(amqps(broker, pki, client_cert)) == b'aio over tls'
    assert aio_round_trip(amqps(strict_broker, pki, client_cert)) == b'aio over tls'
    with pytest.raises((ConnectionError, OSError, aiormq.exceptions.AMQPError)):
        aio_round_trip(amqps(strict_broker, pki))


def test_aio_pika_logs_in_with_external(strict_broker, pki, client_cert):
    url = amqps(strict_broker, pki, client_cert, user='', auth='external')

    async def run() -> list[dict]:
        connection = await aio_pika.connect(url)
        async with connection:
            return await asyncio.to_thread(_api, strict_broker, '/connections')

    [shown] = [c for c in asyncio.run(run()) if c['auth_mechanism'] == 'EXTERNAL']
    assert shown['user'] == 'guest' and shown['ssl'] is True


def _api(broker: BrokerProcess, path: str):
    from .conftest import Api
    return Api(broker.api).ok('GET', path)


# --- kombu ------------------------------------------------------------------------------


def kombu_round_trip(url: str, ssl_options) -> bytes:
    with kombu.Connection(url, ssl=ssl_options) as conn:
        queue = conn.SimpleQueue(f'kombu-tls-{uuid.uuid4().hex[:6]}')
        queue.put({'hello': 'tls'})
        message = queue.get(timeout=5)
        message.ack()
        body = json.dumps(message.payload).encode()
        queue.close()
        return body


def test_kombu_with_ssl_options_with_and_without_a_client_certificate(broker, strict_broker,
                                                                      pki, client_cert):
    url = f'amqps://guest:guest@localhost:{broker.tls_port}//'
    options = {'ca_certs': str(pki.cafile), 'cert_reqs': ssl.CERT_REQUIRED}
    assert kombu_round_trip(url, options) == b'{"hello": "tls"}'
    with_cert = {**options, 'certfile': str(client_cert.cert), 'keyfile': str(client_cert.key)}
    assert kombu_round_trip(url, with_cert) == b'{"hello": "tls"}'
    strict = f'amqps://guest:guest@localhost:{strict_broker.tls_port}//'
    assert kombu_round_trip(strict, with_cert) == b'{"hello": "tls"}'


# --- Celery and the bundled worker ---------------------------------------------------


def celery_env(url: str, broker_use_ssl) -> dict[str, str]:
    return {'TLS_BROKER_URL': url, 'TLS_BROKER_USE_SSL': json.dumps(broker_use_ssl),
            'PYTHONPATH': os.pathsep.join([str(APPS), str(ROOT)]), 'PYTHONUNBUFFERED': '1'}


def leveret_worker(env: dict[str, str], queue: str, log: Path) -> Background:
    worker = Background([sys.executable, '-m', 'leveret', 'worker', '-A', 'tls_celery_app',
                         '-Q', queue, '-c', '1', '--pool', 'solo',
                         '-n', f'tls-{uuid.uuid4().hex[:6]}@testhost'],
                        log, cwd=APPS, env={**os.environ, **env})
    worker.wait_for_log(r'ready\.')
    return worker


@pytest.mark.parametrize('with_cert', [False, True], ids=['no-client-cert', 'client-cert'])
def test_celery_and_the_bundled_worker_with_broker_use_ssl(broker, strict_broker, pki,
                                                           client_cert, tmp_path, with_cert,
                                                           monkeypatch):
    target = strict_broker if with_cert else broker
    options = {'ca_certs': str(pki.cafile), 'cert_reqs': 'CERT_REQUIRED'}
    if with_cert:
        options.update(certfile=str(client_cert.cert), keyfile=str(client_cert.key))
    url = f'amqps://guest:guest@localhost:{target.tls_port}//'
    env = celery_env(url, options)
    queue = f'tls-{uuid.uuid4().hex[:6]}'
    worker = leveret_worker(env, queue, tmp_path / 'worker.log')
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.syspath_prepend(str(APPS))
        sys.modules.pop('tls_celery_app', None)
        import tls_celery_app  # noqa: PLC0415 - configured by the environment above
        try:
            result = tls_celery_app.add.apply_async((2, 3), queue=queue)
            assert result.get(timeout=30) == 5
        finally:
            close_celery_client(tls_celery_app.app)
            sys.modules.pop('tls_celery_app', None)
        connections = _api(target, '/connections')
        assert connections and all(c['ssl'] for c in connections)
        if with_cert:
            assert all(c['peer_cert_subject'].startswith('CN=guest') for c in connections)
    finally:
        worker.stop()
    assert 'Traceback' not in worker.log()


def test_the_leveret_client_with_amqps_and_with_broker_use_ssl(broker, pki, client_cert,
                                                                tmp_path):
    from leveret.client import App
    env = celery_env(f'amqps://guest:guest@localhost:{broker.tls_port}//',
                     {'ca_certs': str(pki.cafile), 'cert_reqs': 'CERT_REQUIRED'})
    queue = f'tls-{uuid.uuid4().hex[:6]}'
    worker = leveret_worker(env, queue, tmp_path / 'worker.log')
    try:
        # An amqps:// URL with aiormq's options...
        app = App(amqps(broker, pki, client_cert))
        try:
            assert app.send_task('tls.add', (20, 22), queue=queue).get(timeout=30) == 42
        finally:
            app.close()
        # ... or Celery's broker_use_ssl with an amqp:// URL (TLS on its port).
        app = App(f'amqp://guest:guest@localhost:{broker.tls_port}/')
        app.conf.broker_use_ssl = {'ca_certs': str(pki.cafile),
                                   'certfile': str(client_cert.cert),
                                   'keyfile': str(client_cert.key)}
        try:
            assert app.send_task('tls.add', (1, 1), queue=queue).get(timeout=30) == 2
        finally:
            app.close()
    finally:
        worker.stop()


def test_a_real_celery_worker_and_client_with_client_certificates(strict_broker, pki,
                                                                  client_cert, tmp_path,
                                                                  monkeypatch):
    options = {'ca_certs': str(pki.cafile), 'cert_reqs': 'CERT_REQUIRED',
               'certfile': str(client_cert.cert), 'keyfile': str(client_cert.key)}
    env = celery_env(f'amqps://guest:guest@localhost:{strict_broker.tls_port}//', options)
    queue = f'tls-{uuid.uuid4().hex[:6]}'
    name = f'celery-tls-{uuid.uuid4().hex[:6]}@testhost'
    worker = Background([sys.executable, '-m', 'celery', '-A', 'tls_celery_app', 'worker',
                         '-Q', queue, '-P', 'solo', '-c', '1', '-n', name, '-l', 'info',
                         '--without-mingle', '--without-gossip'],
                        tmp_path / 'celery.log', cwd=APPS, env={**os.environ, **env})
    try:
        worker.wait_for_log(rf'{name} ready\.', timeout=60)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.syspath_prepend(str(APPS))
        sys.modules.pop('tls_celery_app', None)
        import tls_celery_app  # noqa: PLC0415
        try:
            assert tls_celery_app.add.apply_async((3, 4), queue=queue).get(timeout=30) == 7
        finally:
            close_celery_client(tls_celery_app.app)
            sys.modules.pop('tls_celery_app', None)
    finally:
        worker.stop()
