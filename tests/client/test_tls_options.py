"""How the client reads TLS settings: Celery's broker_use_ssl with py-amqp's
rules, or an amqps:// URL with aiormq's query options (in process)."""

from __future__ import annotations

import ssl

import pytest
import trustme

from leveret.client.tls import TlsSettingsError, for_url


def test_plain_amqp_stays_plain():
    found = for_url('amqp://guest:guest@host:5672/')
    assert found.context is None and found.url == 'amqp://guest:guest@host:5672/'


def test_broker_use_ssl_turns_an_amqp_url_into_amqps_on_5671_unless_a_port_is_named():
    found = for_url('amqp://u:p@host/', True)
    assert found.url == 'amqps://u:p@host:5671/'
    assert found.context is not None and found.context.verify_mode == ssl.CERT_REQUIRED
    assert found.context.check_hostname is False        # py-amqp: only with server_hostname
    assert for_url('amqp://u:p@host:6000/vh', True).url == 'amqps://u:p@host:6000/vh'


def test_broker_use_ssl_as_py_amqp_reads_it(tmp_path):
    ca = trustme.CA()
    ca_file = tmp_path / 'ca.pem'
    ca.cert_pem.write_to_path(str(ca_file))
    context = for_url('amqps://h/', {'ca_certs': str(ca_file), 'cert_reqs': ssl.CERT_NONE}).context
    assert context is not None and context.verify_mode == ssl.CERT_NONE
    pinned = for_url('amqps://10.0.0.1/', {'ca_certs': str(ca_file),
                                            'server_hostname': 'broker.example'}).context
    assert getattr(pinned, 'hostname', None) == 'broker.example'
    with pytest.raises(TlsSettingsError, match="unknown key ca_cert"):
        for_url('amqps://h/', {'ca_cert': 'typo.pem'})
    with pytest.raises(TlsSettingsError, match='broker_use_ssl'):
        for_url('amqps://h/', {'ca_certs': str(tmp_path / 'missing.pem')})
    with pytest.raises(TlsSettingsError, match='must be true, false, a dict'):
        for_url('amqps://h/', 'yes')


def test_an_amqps_url_alone_uses_aiormqs_options():
    found = for_url('amqps://h:5671/?no_verify_ssl=1')
    assert found.url == 'amqps://h:5671/?no_verify_ssl=1'
    assert found.context is not None and found.context.verify_mode == ssl.CERT_NONE
    strict = for_url('amqps://h:5671/').context
    assert strict is not None and strict.check_hostname and \
        strict.verify_mode == ssl.CERT_REQUIRED


def test_an_ssl_context_is_used_as_given():
    context = ssl.create_default_context()
    assert for_url('amqps://h/', context).context is context
