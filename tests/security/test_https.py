"""The management API over HTTPS, with the same settings as amqps."""

from __future__ import annotations

import signal
import ssl
import urllib.error
from pathlib import Path

import pytest

from ..processes import wait_until
from .conftest import Api
from .pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / 'pki')


def https_env(pki: Pki, **settings: str) -> dict[str, str]:
    server = pki.issue('https')
    env = {'LEVERET_MANAGEMENT_TLS_CERTFILE': str(server.cert),
           'LEVERET_MANAGEMENT_TLS_KEYFILE': str(server.key),
           'LEVERET_MANAGEMENT_TLS_CAFILE': str(pki.cafile),
           'LEVERET_MANAGEMENT_TLS_PORT': '0'}
    env.update({f'LEVERET_{k.upper()}': v for k, v in settings.items()})
    return env


def https(broker, context: ssl.SSLContext) -> Api:
    return Api(f'https://localhost:{broker.management_tls_port}/api', context=context)


def test_the_api_is_served_over_https_beside_http(broker_factory, pki):
    broker = broker_factory(extra_env=https_env(pki)).start()
    overview = https(broker, pki.client_context()).ok('GET', '/overview')
    protocols = {(entry['protocol'], entry['port']) for entry in overview['listeners']}
    assert ('https', broker.management_tls_port) in protocols
    assert ('http', broker.management_port) in protocols
    assert Api(broker.api).ok('GET', '/whoami')['name'] == 'guest'


def test_https_only_and_client_certificates_required(broker_factory, pki):
    broker = broker_factory(extra_env=https_env(
        pki, management_plain_listener='false', management_tls_verify='verify_peer',
        management_tls_fail_if_no_peer_cert='true')).start()
    assert broker.management_port == 0
    client = pki.issue('api-client', 'client.example', common_name='guest')
    assert https(broker, pki.client_context(client)).ok('GET', '/whoami')['name'] == 'guest'
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionResetError)):
        https(broker, pki.client_context()).call('GET', '/whoami')
    assert 'Traceback' not in broker.log()


def test_sighup_reloads_the_https_certificate(broker_factory, pki):
    broker = broker_factory(extra_env=https_env(pki)).start()
    broker.send_signal(signal.SIGHUP)
    wait_until(lambda: 'management TLS certificates reloaded' in broker.log(), timeout=10)
    assert https(broker, pki.client_context()).ok('GET', '/whoami')['name'] == 'guest'
