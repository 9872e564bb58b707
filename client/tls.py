"""TLS to the broker, configured as Celery and its transports configure it.

Two ways to ask for it, as a Celery app can:

* ``broker_use_ssl`` (Celery's setting): ``True``, or a dict with the keys
  py-amqp's transport takes (``ca_certs``, ``certfile``, ``keyfile``,
  ``cert_reqs``, ``server_hostname``, ``ciphers``, ``ssl_version``,
  ``tls_minimum_version``, ``tls_maximum_version``), read with py-amqp's
  rules: the server certificate is verified (``cert_reqs`` defaults to
  ``CERT_REQUIRED``; the system CAs without ``ca_certs``) and its host name
  checked only when ``server_hostname`` is given; or an ``ssl.SSLContext``.
  An ``amqp://`` URL then means TLS on its port (5671 when it names none).
* an ``amqps://`` URL alone, with aiormq's query options (``cafile``,
  ``certfile``, ``keyfile``, ``no_verify_ssl=1``): the certificate and the
  host name are verified unless ``no_verify_ssl`` says otherwise.

:func:`for_url` gives the URL to connect to and the context; the client's
aio-pika connections and the worker's own consumer connection use the same
one, so they behave the same.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from yarl import URL

#: The keys of a ``broker_use_ssl`` dict (py-amqp's ``_wrap_socket_sni``).
SSL_KEYS = frozenset(('ca_certs', 'certfile', 'keyfile', 'cert_reqs', 'server_hostname',
                      'ciphers', 'ssl_version', 'tls_minimum_version', 'tls_maximum_version',
                      'do_handshake_on_connect', 'suppress_ragged_eofs'))


class TlsSettingsError(ValueError):
    """``broker_use_ssl`` or the URL's TLS options cannot be used."""


@dataclass(frozen=True)
class Tls:
    """Where to connect and how: the URL (``amqps://`` when TLS) and the context."""

    url: str
    context: ssl.SSLContext | None


class _NamedContext(ssl.SSLContext):
    """A context that checks one given host name whatever host is connected
    to (``server_hostname`` of ``broker_use_ssl``)."""

    inner: ssl.SSLContext
    hostname: str

    def __new__(cls, inner: ssl.SSLContext, hostname: str) -> _NamedContext:
        self = super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)
        self.inner, self.hostname = inner, hostname
        return self

    def __init__(self, inner: ssl.SSLContext, hostname: str) -> None:  # noqa: D107
        pass

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,  # type: ignore[override]
                 server_side: bool = False, server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return self.inner.wrap_bio(incoming, outgoing, server_side=server_side,
                                   server_hostname=self.hostname, session=session)


def _from_options(options: dict[str, Any]) -> ssl.SSLContext:
    """py-amqp's context for a ``broker_use_ssl`` dict."""
    unknown = sorted(set(options) - SSL_KEYS)
    if unknown:
        raise TlsSettingsError(f"broker_use_ssl: unknown key{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(unknown)} (known: {', '.join(sorted(SSL_KEYS))})")
    try:
        context = ssl.SSLContext(options.get('ssl_version') or ssl.PROTOCOL_TLS_CLIENT)
        if options.get('tls_minimum_version') is not None:
            context.minimum_version = options['tls_minimum_version']
        if options.get('tls_maximum_version') is not None:
            context.maximum_version = options['tls_maximum_version']
        if options.get('certfile') is not None:
            context.load_cert_chain(options['certfile'], options.get('keyfile'))
        if options.get('ca_certs') is not None:
            context.load_verify_locations(options['ca_certs'])
        if options.get('ciphers') is not None:
            context.set_ciphers(options['ciphers'])
        hostname = options.get('server_hostname')
        context.check_hostname = hostname is not None
        if options.get('cert_reqs') is not None:
            context.verify_mode = options['cert_reqs']
        if options.get('ca_certs') is None and context.verify_mode != ssl.CERT_NONE:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise TlsSettingsError(f'broker_use_ssl: {exc}') from None
    return _NamedContext(context, hostname) if hostname is not None else context


def _from_query(url: URL) -> ssl.SSLContext:
    """aiormq's context for an ``amqps://`` URL's query options."""
    query = url.query
    try:
        context = ssl.create_default_context(cafile=query.get('cafile'))
        if query.get('certfile'):
            context.load_cert_chain(query['certfile'], query.get('keyfile'))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSettingsError(f'the URL\'s TLS files: {exc}') from None
    if query.get('no_verify_ssl', '0') != '0':
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def for_url(url: str, broker_use_ssl: Any = None) -> Tls:
    """The URL to connect to and its TLS context (None: plain AMQP)."""
    parsed = URL(url)
    if isinstance(broker_use_ssl, ssl.SSLContext):
        context: ssl.SSLContext | None = broker_use_ssl
    elif isinstance(broker_use_ssl, dict):
        context = _from_options(broker_use_ssl)
    elif broker_use_ssl is True:
        context = _from_options({})
    elif broker_use_ssl not in (None, False):
        raise TlsSettingsError(f'broker_use_ssl must be true, false, a dict or an SSLContext, '
                               f'not {broker_use_ssl!r}')
    elif parsed.scheme == 'amqps':
        context = _from_query(parsed)
    else:
        return Tls(url, None)
    if parsed.scheme == 'amqp':
        port = parsed.explicit_port if parsed.explicit_port is not None else 5671
        parsed = parsed.with_scheme('amqps').with_port(port)
    return Tls(str(parsed), context)
