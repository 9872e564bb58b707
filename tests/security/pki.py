"""A throw-away certificate authority for the TLS tests (trustme): the
broker's certificate, client certificates, and their files."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization


@dataclass
class Files:
    cert: Path
    key: Path


class Pki:
    """One CA in ``folder``: ``ca.pem``, and certificates issued on demand."""

    def __init__(self, folder: Path, name: str = 'ca') -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ca = trustme.CA(organization_name=f'Leveret tests {name}')
        self.cafile = folder / f'{name}.pem'
        self.ca.cert_pem.write_to_path(str(self.cafile))
        self.name = name

    def issue(self, file_name: str, *identities: str, common_name: str | None = None,
              key_password: str | None = None) -> Files:
        cert = self.ca.issue_cert(*(identities or ('localhost', '127.0.0.1')),
                                  common_name=common_name)
        files = Files(self.folder / f'{file_name}.crt', self.folder / f'{file_name}.key')
        files.cert.write_bytes(b''.join(pem.bytes() for pem in cert.cert_chain_pems))
        if key_password is None:
            cert.private_key_pem.write_to_path(str(files.key))
        else:
            key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
            files.key.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(key_password.encode())))
        return files

    def client_context(self, client: Files | None = None) -> ssl.SSLContext:
        """A client context trusting this CA, presenting ``client`` if given."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context


def broker_env(server: Files, pki: Pki, **settings: str) -> dict[str, str]:
    """``LEVERET_*`` variables for a broker with an amqps listener on any port."""
    env = {'LEVERET_TLS_CERTFILE': str(server.cert), 'LEVERET_TLS_KEYFILE': str(server.key),
           'LEVERET_TLS_CAFILE': str(pki.cafile), 'LEVERET_TLS_PORT': '0'}
    env.update({f'LEVERET_{k.upper()}': v for k, v in settings.items()})
    return env
