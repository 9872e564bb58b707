"""TLS for the broker's listeners: contexts from the settings, reloaded on
SIGHUP, and what a TLS connection tells about itself and its peer.

:func:`server_context` builds an ``ssl.SSLContext`` from certificate files
(TLS 1.2 at least; ``verify_none`` asks for no client certificate,
``verify_peer`` checks one against the CA when the client sends one, and
refuses a client without one when ``fail_if_no_peer_cert`` is set).  A
missing, unreadable or mismatched file raises :class:`TlsError` with one
line that names the setting and the file.

:class:`ReloadableContext` is what a listener is given: an ``SSLContext``
whose ``wrap_bio`` (the call asyncio's and uvloop's TLS transports make for
each new connection) hands the connection to the context of the moment.
:meth:`ReloadableContext.reload` builds a new context from the same files
and swaps it in, so new connections get the new certificate while the open
ones keep the context they were made with; a reload that fails keeps the
old context and says why.

:func:`describe` turns a connection's ``ssl_object`` into the fields
RabbitMQ's management API shows (protocol, cipher, the peer certificate's
subject, issuer and validity) and the user name the ``EXTERNAL`` mechanism
logs in as.  This module imports nothing of Leveret's (the session and the
wiring both use it).
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Verify = Literal['verify_none', 'verify_peer']
LoginFrom = Literal['common_name', 'distinguished_name']


class TlsError(OSError):
    """A certificate, key or CA file that cannot be used (one line)."""


@dataclass(frozen=True)
class TlsFiles:
    """Where a listener's certificate, key and CA are, and how it verifies peers.

    ``prefix`` is the settings' name for them (``tls`` or ``management_tls``),
    used in error messages."""

    certfile: Path
    keyfile: Path | None = None
    cafile: Path | None = None
    verify: Verify = 'verify_none'
    fail_if_no_peer_cert: bool = False
    key_password: str | None = None
    prefix: str = 'tls'


def _readable(path: Path, setting: str) -> None:
    try:
        with open(path, 'rb'):
            pass
    except OSError as exc:
        raise TlsError(f'{setting} {path}: {exc.strerror or exc}') from None


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context for ``files``; :class:`TlsError` if one is unusable."""
    p = files.prefix
    _readable(files.certfile, f'{p}_certfile')
    if files.keyfile is not None:
        _readable(files.keyfile, f'{p}_keyfile')
    if files.cafile is not None:
        _readable(files.cafile, f'{p}_cafile')
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.certfile, files.keyfile,
                                password=files.key_password)
    except (ssl.SSLError, ValueError) as exc:
        key = f' and {p}_keyfile {files.keyfile}' if files.keyfile else ''
        raise TlsError(f'{p}_certfile {files.certfile}{key}: cannot load the certificate and '
                       f'its key (not PEM, a wrong {p}_key_password, or a key of another '
                       f'certificate): {_reason(exc)}') from None
    if files.cafile is not None:
        try:
            context.load_verify_locations(cafile=files.cafile)
        except (ssl.SSLError, ValueError) as exc:
            raise TlsError(f'{p}_cafile {files.cafile}: cannot load the CA certificates: '
                           f'{_reason(exc)}') from None
    if files.verify == 'verify_peer':
        context.verify_mode = (ssl.CERT_REQUIRED if files.fail_if_no_peer_cert
                               else ssl.CERT_OPTIONAL)
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace('_', ' ')
    return str(exc)


class ReloadableContext(ssl.SSLContext):
    """A listener's context whose certificates can be replaced while it listens."""

    current: ssl.SSLContext
    files: TlsFiles

    def __new__(cls, files: TlsFiles) -> ReloadableContext:
        self = super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)
        self.files = files
        self.current = server_context(files)
        self.loaded_at = time.time()
        return self

    def __init__(self, files: TlsFiles) -> None:   # noqa: D107 - __new__ did it
        pass

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,  # type: ignore[override]
                 server_side: bool = False, server_hostname: str | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return self.current.wrap_bio(incoming, outgoing, server_side=server_side,
                                     server_hostname=server_hostname, session=session)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:  # type: ignore[override]
        return self.current.wrap_socket(*args, **kwargs)

    def reload(self) -> None:
        """Read the files again; new connections get the new context.

        Raises :class:`TlsError` (and keeps the old context) if they fail."""
        self.current = server_context(self.files)
        self.loaded_at = time.time()


# --- what a TLS connection tells -------------------------------------------------------

#: Short names of the attributes RFC 4514 writes them with.
_SHORT = {'commonName': 'CN', 'countryName': 'C', 'localityName': 'L',
          'stateOrProvinceName': 'ST', 'organizationName': 'O',
          'organizationalUnitName': 'OU', 'streetAddress': 'STREET',
          'domainComponent': 'DC', 'userId': 'UID', 'emailAddress': 'emailAddress'}


def distinguished_name(rdns: Any) -> str:
    """A name of ``getpeercert()`` as RFC 4514 writes it (the last RDN first),
    which is how RabbitMQ shows ``peer_cert_subject``: ``CN=client,O=Example``."""
    parts = []
    for rdn in reversed(rdns or ()):
        parts.append('+'.join(f'{_SHORT.get(key, key)}={_escape(value)}'
                              for key, value in rdn))
    return ','.join(parts)


def _escape(value: str) -> str:
    out = ''.join('\\' + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if out.startswith((' ', '#')):
        out = '\\' + out
    if out.endswith(' '):
        out = out[:-1] + '\\ '
    return out


def common_name(rdns: Any) -> str | None:
    """The (last) CN of a name of ``getpeercert()``."""
    found = None
    for rdn in rdns or ():
        for key, value in rdn:
            if key == 'commonName':
                found = value
    return found


def _cert_time(value: str) -> str:
    """``Jan  1 00:00:00 3000 GMT`` as ``3000-01-01T00:00:00Z``."""
    try:
        stamp = ssl.cert_time_to_seconds(value)
    except ValueError:
        return value
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(stamp))


def _cipher_parts(name: str) -> tuple[str, str, str]:
    """(key exchange, cipher, hash) of an OpenSSL suite name, as RabbitMQ
    shows them: ``TLS_AES_256_GCM_SHA384`` is ``any``, ``aes_256_gcm``,
    ``sha384``; ``ECDHE-RSA-AES128-GCM-SHA256`` is ``ecdhe_rsa``,
    ``aes_128_gcm``, ``sha256``."""
    if name.startswith('TLS_'):        # TLS 1.3: the key exchange is not in the name
        words = name[4:].lower().split('_')
        return 'any', '_'.join(words[:-1]), words[-1]
    words = name.lower().split('-')
    hashes = ('sha', 'sha256', 'sha384', 'md5')
    digest = words[-1] if words[-1] in hashes else 'aead'
    body = words[:-1] if words[-1] in hashes else words
    kx: list[str] = []
    while body and body[0] in ('ecdhe', 'dhe', 'rsa', 'ecdsa', 'psk', 'dh'):
        kx.append(body.pop(0))
    cipher = '_'.join(body).replace('aes256', 'aes_256').replace('aes128', 'aes_128')
    return '_'.join(kx) or 'rsa', cipher, digest


@dataclass(frozen=True)
class TlsSession:
    """A TLS connection as the management API shows it."""

    protocol: str                  # 'tlsv1.3', as RabbitMQ writes it
    cipher: str
    key_exchange: str
    hash: str
    peer_cert_subject: str | None
    peer_cert_issuer: str | None
    peer_cert_validity: str | None
    #: The user the EXTERNAL mechanism logs in as (None: no verified certificate).
    login: str | None


def describe(ssl_object: ssl.SSLObject | None, login_from: LoginFrom = 'common_name'
             ) -> TlsSession | None:
    """What ``ssl_object`` tells (None for a connection without TLS)."""
    if ssl_object is None:
        return None
    suite, version, _bits = ssl_object.cipher() or ('', ssl_object.version() or '', 0)
    key_exchange, cipher, digest = _cipher_parts(suite)
    # getpeercert() is a dict only for a certificate the context verified.
    cert = ssl_object.getpeercert()
    subject = issuer = validity = login = None
    if cert:
        subject = distinguished_name(cert.get('subject'))
        issuer = distinguished_name(cert.get('issuer'))
        validity = (f"{_cert_time(cert.get('notBefore', ''))} - "
                    f"{_cert_time(cert.get('notAfter', ''))}")
        login = (common_name(cert.get('subject')) if login_from == 'common_name'
                 else subject) or None
    return TlsSession((version or ssl_object.version() or '').lower(), cipher, key_exchange,
                      digest, subject, issuer, validity, login)


def tls_files(settings: Any, prefix: str) -> TlsFiles | None:
    """The ``<prefix>_*`` settings as :class:`TlsFiles` (None without a certificate)."""
    certfile = getattr(settings, f'{prefix}_certfile')
    if certfile is None:
        return None
    return TlsFiles(
        certfile=Path(os.path.expanduser(str(certfile))),
        keyfile=getattr(settings, f'{prefix}_keyfile'),
        cafile=getattr(settings, f'{prefix}_cafile'),
        verify=getattr(settings, f'{prefix}_verify'),
        fail_if_no_peer_cert=getattr(settings, f'{prefix}_fail_if_no_peer_cert'),
        key_password=getattr(settings, f'{prefix}_key_password'),
        prefix=prefix)
