"""The amqps listener: each verification mode, EXTERNAL, bad and wrong
certificates, the wrong protocol on each port, reloading on SIGHUP, and what
the management API shows of a TLS connection."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pika
import pika.credentials
import pika.exceptions
import pytest
from pamqp import commands as C

from ..conftest import ROOT, BrokerProcess
from ..processes import wait_until
from ..rawamqp import PROTOCOL_HEADER, RawClient
from .conftest import Api
from .pki import Pki, broker_env


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / 'pki')


def tls_broker(broker_factory, pki: Pki, **settings: str) -> BrokerProcess:
    server = pki.issue('server')
    return broker_factory(extra_env=broker_env(server, pki, **settings)).start()


def pika_params(broker: BrokerProcess, context: ssl.SSLContext,
                credentials: pika.credentials.VALID_TYPES | None = None,
                ) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host='127.0.0.1', port=broker.tls_port,
        credentials=credentials or pika.PlainCredentials('guest', 'guest'),
        ssl_options=pika.SSLOptions(context, server_hostname='localhost'))


def mechanisms(broker: BrokerProcess, context: ssl.SSLContext) -> list[str]:
    with RawClient(broker.tls_port, context=context) as client:
        client.send(PROTOCOL_HEADER)
        start = client.expect(C.Connection.Start, 0)
        return start.mechanisms.split()


def round_trip(params: pika.ConnectionParameters, queue: str = 'tls-q') -> bytes:
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.queue_declare(queue)
        ch.basic_publish('', queue, b'over tls')
        deadline = time.monotonic() + 5
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is not None or time.monotonic() > deadline:
                return body


def handshake_refused(broker: BrokerProcess, context: ssl.SSLContext) -> bool:
    """The TLS handshake fails, or the broker drops the connection right after."""
    sock = socket.create_connection(('127.0.0.1', broker.tls_port), timeout=5)
    try:
        tls = context.wrap_socket(sock, server_hostname='localhost')
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    try:
        tls.sendall(PROTOCOL_HEADER)
        return tls.recv(1024) == b''     # TLS 1.3: the alert comes after the handshake
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    finally:
        tls.close()


# --- verification modes -----------------------------------------------------------------


def test_verify_none_serves_amqps_without_client_certificates(broker_factory, pki):
    broker = tls_broker(broker_factory, pki)
    context = pki.client_context()
    assert round_trip(pika_params(broker, context)) == b'over tls'
    # The client's certificate is not asked for: no EXTERNAL even with one.
    assert mechanisms(broker, pki.client_context(pki.issue('c', common_name='guest'))) == \
        ['PLAIN', 'AMQPLAIN']
    # The plain listener goes on as before.
    with pika.BlockingConnection(pika.URLParameters(broker.url)):
        pass


def test_verify_peer_accepts_clients_with_and_without_a_certificate(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer')
    assert round_trip(pika_params(broker, pki.client_context())) == b'over tls'
    client = pki.issue('client', 'client.example', common_name='guest')
    assert round_trip(pika_params(broker, pki.client_context(client))) == b'over tls'
    assert mechanisms(broker, pki.client_context(client)) == ['PLAIN', 'AMQPLAIN', 'EXTERNAL']
    assert mechanisms(broker, pki.client_context()) == ['PLAIN', 'AMQPLAIN']


def test_fail_if_no_peer_cert_refuses_a_client_without_one(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer',
                        tls_fail_if_no_peer_cert='true')
    assert handshake_refused(broker, pki.client_context())
    client = pki.issue('client', 'client.example', common_name='guest')
    assert round_trip(pika_params(broker, pki.client_context(client))) == b'over tls'
    assert 'Traceback' not in broker.log()


def test_a_client_certificate_from_another_ca_is_refused(broker_factory, pki, tmp_path):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer')
    other = Pki(tmp_path / 'other', 'other-ca')
    stranger = other.issue('stranger', 'stranger.example', common_name='guest')
    context = pki.client_context()
    context.load_cert_chain(str(stranger.cert), str(stranger.key))
    assert handshake_refused(broker, context)
    assert 'Traceback' not in broker.log()


def test_a_client_that_does_not_trust_the_brokers_ca_refuses_it(broker_factory, pki, tmp_path):
    broker = tls_broker(broker_factory, pki)
    other = Pki(tmp_path / 'other', 'other-ca')
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLCertVerificationError)):
        pika.BlockingConnection(pika_params(broker, other.client_context()))


def test_tls_1_2_is_the_least_accepted(broker_factory, pki):
    from leveret.broker.tls import TlsFiles, server_context
    server = pki.issue('floor')
    assert server_context(TlsFiles(server.cert, server.key)).minimum_version == \
        ssl.TLSVersion.TLSv1_2
    broker = tls_broker(broker_factory, pki)
    context = pki.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert round_trip(pika_params(broker, context)) == b'over tls'
    old = pki.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        try:
            old.set_ciphers('DEFAULT:@SECLEVEL=0')
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pytest.skip('this OpenSSL cannot offer TLS 1.1')
    assert handshake_refused(broker, old)


# --- EXTERNAL ----------------------------------------------------------------------------


def test_external_logs_in_as_the_certificates_common_name(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer')
    Api(broker.api).ok('PUT', '/users/certuser', {'password': 'unused', 'tags': ''})
    Api(broker.api).ok('PUT', '/permissions/%2F/certuser',
                       {'configure': '.*', 'write': '.*', 'read': '.*'})
    client = pki.issue('certuser', 'client.example', common_name='certuser')
    params = pika_params(broker, pki.client_context(client), pika.credentials.ExternalCredentials())
    assert round_trip(params) == b'over tls'
    with pika.BlockingConnection(params) as conn:
        [shown] = [c for c in Api(broker.api).ok('GET', '/connections')
                   if c['auth_mechanism'] == 'EXTERNAL']
        assert shown['user'] == 'certuser' and conn.is_open
    # A certificate naming nobody the broker knows logs in as nobody.
    nobody = pki.issue('nobody', 'client.example', common_name='nobody')
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika_params(broker, pki.client_context(nobody),
                                            pika.credentials.ExternalCredentials()))
    assert "user 'nobody' (from the client certificate): no such user" in broker.log()


def test_external_is_never_offered_on_a_plain_connection(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer')
    with RawClient(broker.port) as client:
        client.send(PROTOCOL_HEADER)
        assert client.expect(C.Connection.Start, 0).mechanisms == 'PLAIN AMQPLAIN'
        client.send_method(0, C.Connection.StartOk(
            client_properties={'capabilities': {'authentication_failure_close': True}},
            mechanism='EXTERNAL', response=''))
        close = client.expect(C.Connection.Close, 0)
        assert close.reply_code == 403
        assert close.reply_text == "ACCESS_REFUSED - unsupported authentication mechanism " \
                                   "'EXTERNAL'"


def test_external_can_log_in_with_the_whole_distinguished_name(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer',
                        tls_cert_login_from='distinguished_name')
    client = pki.issue('dn', 'client.example', common_name='dnuser')
    context = pki.client_context(client)
    with RawClient(broker.tls_port, context=context) as raw:
        raw.send(PROTOCOL_HEADER)
        raw.expect(C.Connection.Start, 0)
        raw.send_method(0, C.Connection.StartOk(
            client_properties={'capabilities': {'authentication_failure_close': True}},
            mechanism='EXTERNAL', response=''))
        raw.expect(C.Connection.Close, 0)
    assert "user 'CN=dnuser,OU=" in broker.log()


# --- the wrong protocol on each port --------------------------------------------------


def test_plaintext_sent_to_the_tls_port_is_refused_cleanly(broker_factory, pki):
    broker = tls_broker(broker_factory, pki)
    with socket.create_connection(('127.0.0.1', broker.tls_port), timeout=5) as sock:
        sock.sendall(PROTOCOL_HEADER)
        received = b''
        try:
            while chunk := sock.recv(1024):
                received += chunk
        except ConnectionResetError:
            pass
        assert PROTOCOL_HEADER not in received     # no AMQP spoken in the clear
    with pika.BlockingConnection(pika_params(broker, pki.client_context())):
        pass
    assert 'Traceback' not in broker.log()


def test_tls_sent_to_the_plain_port_is_refused_cleanly(broker_factory, pki):
    broker = tls_broker(broker_factory, pki)
    with socket.create_connection(('127.0.0.1', broker.port), timeout=5) as sock:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            pki.client_context().wrap_socket(sock, server_hostname='localhost')
    wait_until(lambda: 'TLS handshake on a plain AMQP listener' in broker.log(), timeout=5)
    assert 'Traceback' not in broker.log()


def test_the_plain_listener_can_be_turned_off(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, plain_listener='false')
    assert broker.port == 0 and broker.tls_port
    assert round_trip(pika_params(broker, pki.client_context())) == b'over tls'
    listeners = Api(broker.api).ok('GET', '/overview')['listeners']
    assert [entry['protocol'] for entry in listeners] == ['amqp/ssl', 'http', 'http/prometheus']
    # The container's healthcheck asks the amqps port then.
    from leveret.broker.healthcheck import check
    assert check('127.0.0.1', broker.tls_port, tls=True)
    assert not check('127.0.0.1', broker.tls_port)


# --- certificates that cannot be used ---------------------------------------------------


def start_fails(tmp_path: Path, **settings: str) -> str:
    env = {k: v for k, v in __import__('os').environ.items() if not k.startswith('LEVERET_')}
    env.update({f'LEVERET_{k.upper()}': v for k, v in settings.items()})
    done = subprocess.run([sys.executable, '-m', 'leveret', 'broker', '--port', '0',
                           '--management-port', '0', '--data-dir', str(tmp_path / 'data')],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1, done
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in done.stderr
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_missing_or_unusable_certificate_stops_the_start_with_one_line(pki, tmp_path):
    server = pki.issue('server')
    line = start_fails(tmp_path, tls_certfile=str(tmp_path / 'nope.pem'),
                       tls_keyfile=str(server.key), tls_port='0')
    assert line == (f'leveret: cannot start the broker: tls_certfile {tmp_path / "nope.pem"}: '
                    f'No such file or directory')
    other = pki.issue('other')
    line = start_fails(tmp_path, tls_certfile=str(server.cert), tls_keyfile=str(other.key),
                       tls_port='0')
    assert 'cannot load the certificate and its key' in line and 'tls_keyfile' in line
    garbage = tmp_path / 'garbage.pem'
    garbage.write_text('not a certificate\n')
    line = start_fails(tmp_path, tls_certfile=str(garbage), tls_port='0')
    assert f'tls_certfile {garbage}' in line
    line = start_fails(tmp_path, tls_certfile=str(server.cert), tls_keyfile=str(server.key),
                       tls_cafile=str(garbage), tls_port='0')
    assert f'tls_cafile {garbage}: cannot load the CA certificates' in line


def test_an_encrypted_key_needs_its_password(broker_factory, pki, tmp_path):
    server = pki.issue('locked', key_password='s3cret')
    line = start_fails(tmp_path, tls_certfile=str(server.cert), tls_keyfile=str(server.key),
                       tls_key_password='wrong', tls_port='0')
    assert 'wrong tls_key_password' in line
    broker = broker_factory(extra_env=broker_env(server, pki, tls_key_password='s3cret')).start()
    assert round_trip(pika_params(broker, pki.client_context())) == b'over tls'


# --- SIGHUP -----------------------------------------------------------------------------


def peer_common_name(broker: BrokerProcess, context: ssl.SSLContext) -> str:
    with socket.create_connection(('127.0.0.1', broker.tls_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname='localhost') as tls:
            subject = dict(item for rdn in tls.getpeercert()['subject'] for item in rdn)
            return subject['commonName']


def test_sighup_rereads_the_certificates_and_keeps_open_connections(broker_factory, pki):
    first = pki.issue('server', 'localhost', '127.0.0.1', common_name='first')
    broker = broker_factory(extra_env=broker_env(first, pki)).start()
    context = pki.client_context()
    assert peer_common_name(broker, context) == 'first'
    held = pika.BlockingConnection(pika_params(broker, context))
    channel = held.channel()
    channel.queue_declare('kept')
    # New files in the same place, then SIGHUP.
    second = pki.issue('second', 'localhost', '127.0.0.1', common_name='second')
    first.cert.write_bytes(second.cert.read_bytes())
    first.key.write_bytes(second.key.read_bytes())
    broker.send_signal(signal.SIGHUP)
    wait_until(lambda: 'amqps TLS certificates reloaded' in broker.log(), timeout=10)
    assert peer_common_name(broker, context) == 'second'
    channel.basic_publish('', 'kept', b'still here')        # the old connection lives on
    assert channel.basic_get('kept', auto_ack=True)[2] == b'still here'
    # A reload that fails keeps what was there.
    first.cert.write_text('broken\n')
    broker.send_signal(signal.SIGHUP)
    wait_until(lambda: 'TLS certificates not reloaded (the old ones stay)' in broker.log(),
               timeout=10)
    assert peer_common_name(broker, context) == 'second'
    held.close()
    assert 'Traceback' not in broker.log()


# --- what the API shows -----------------------------------------------------------------


def test_the_api_shows_the_tls_session_and_the_peer_certificate(broker_factory, pki):
    broker = tls_broker(broker_factory, pki, tls_verify='verify_peer')
    client = pki.issue('client', 'client.example', common_name='guest')
    api = Api(broker.api)
    with pika.BlockingConnection(pika_params(broker, pki.client_context(client))):
        with pika.BlockingConnection(pika.URLParameters(broker.url)):
            shown = {c['port']: c for c in api.ok('GET', '/connections')}
    tls, plain = shown[broker.tls_port], shown[broker.port]
    assert tls['ssl'] is True and plain['ssl'] is False
    assert tls['ssl_protocol'] in ('tlsv1.2', 'tlsv1.3')
    assert tls['ssl_cipher'] and tls['ssl_hash'] and tls['ssl_key_exchange']
    assert tls['peer_cert_subject'].startswith('CN=guest,OU=Testing cert')
    assert tls['peer_cert_issuer'].startswith('OU=Testing CA') or \
        'O=Leveret tests ca' in tls['peer_cert_issuer']
    assert ' - ' in tls['peer_cert_validity'] and tls['peer_cert_validity'].endswith('Z')
    for key in ('ssl_protocol', 'ssl_cipher', 'peer_cert_subject', 'peer_cert_issuer',
                'peer_cert_validity'):
        assert plain[key] is None
