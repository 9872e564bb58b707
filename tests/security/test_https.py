"""The management API over HTTPS, with the same settings as amqps."""

from __future__ import annotations

import signal
import ssl
import urllib.error
import urllib.request
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


def metrics_env(pki: Pki, **settings: str) -> dict[str, str]:
    server = pki.issue('metrics')
    env = {'LEVERET_PROMETHEUS_TLS_CERTFILE': str(server.cert),
           'LEVERET_PROMETHEUS_TLS_KEYFILE': str(server.key),
           'LEVERET_PROMETHEUS_TLS_CAFILE': str(pki.cafile),
           'LEVERET_PROMETHEUS_TLS_PORT': '0'}
    env.update({f'LEVERET_{k.upper()}': v for k, v in settings.items()})
    return env


def scrape(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, context=context, timeout=10) as response:
        return response.read().decode()


def test_the_metrics_are_served_over_https_beside_http(broker_factory, pki):
    broker = broker_factory(extra_env=metrics_env(pki)).start()
    assert broker.metrics_tls_port and broker.metrics_port
    over_tls = scrape(f'https://localhost:{broker.metrics_tls_port}/metrics',
                      pki.client_context())
    assert 'rabbitmq_identity_info' in over_tls
    assert 'rabbitmq_identity_info' in scrape(broker.metrics_url)
    listeners = {(entry['protocol'], entry['port'])
                 for entry in Api(broker.api).ok('GET', '/overview')['listeners']}
    assert ('https/prometheus', broker.metrics_tls_port) in listeners
    assert ('http/prometheus', broker.metrics_port) in listeners


def test_metrics_over_https_only_with_client_certificates_required(broker_factory, pki):
    broker = broker_factory(extra_env=metrics_env(
        pki, prometheus_plain_listener='false', prometheus_tls_verify='verify_peer',
        prometheus_tls_fail_if_no_peer_cert='true')).start()
    assert broker.metrics_port == 0
    url = f'https://localhost:{broker.metrics_tls_port}/metrics'
    client = pki.issue('scraper', 'client.example', common_name='prometheus')
    assert 'rabbitmq_identity_info' in scrape(url, pki.client_context(client))
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionResetError)):
        scrape(url, pki.client_context())
    broker.send_signal(signal.SIGHUP)
    wait_until(lambda: 'prometheus TLS certificates reloaded' in broker.log(), timeout=10)
    assert 'rabbitmq_identity_info' in scrape(url, pki.client_context(client))
    assert 'Traceback' not in broker.log()


def test_metrics_https_only_without_a_certificate_is_refused_at_start(broker_factory):
    broker = broker_factory(extra_env={'LEVERET_PROMETHEUS_PLAIN_LISTENER': 'false'})
    with pytest.raises(RuntimeError, match='prometheus_plain_listener is false'):
        broker.start()
    assert 'Traceback' not in broker.log()
