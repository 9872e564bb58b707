"""Users, passwords and the SASL mechanisms PLAIN and AMQPLAIN.

Passwords are kept as salted SHA-256 hashes, as RabbitMQ's default
``rabbit_password_hashing_sha256``.  ``guest`` may log in from loopback
only unless the configuration says otherwise, as in RabbitMQ.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

MECHANISMS = ('PLAIN', 'AMQPLAIN')


class AuthenticationError(Exception):
    """Login refused; the text goes to the log, never to the client."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return (salt + digest).hex()


def check_password(password: str, stored: str) -> bool:
    raw = bytes.fromhex(stored)
    salt = raw[:4]
    return hmac.compare_digest(hash_password(password, salt), stored)


@dataclass
class User:
    name: str
    password_hash: str
    tags: list[str] = field(default_factory=list)
    #: vhost names this user may open.
    vhosts: set[str] = field(default_factory=lambda: {'/'})
    loopback_only: bool = False


def parse_response(mechanism: str, response: bytes | str) -> tuple[str, str]:
    """Username and password from a start-ok response."""
    # The method decoder gives a longstr as str when it is valid UTF-8.
    raw = response.encode() if isinstance(response, str) else bytes(response)
    if mechanism == 'PLAIN':
        parts = raw.split(b'\x00')
        if len(parts) != 3:
            raise AuthenticationError('malformed PLAIN response')
        return parts[1].decode(errors='replace'), parts[2].decode(errors='replace')
    if mechanism == 'AMQPLAIN':
        table = _amqplain_fields(raw)
        login, password = table.get('LOGIN'), table.get('PASSWORD')
        if login is None or password is None:
            raise AuthenticationError('AMQPLAIN response lacks LOGIN or PASSWORD')
        return login.decode(errors='replace'), password.decode(errors='replace')
    raise AuthenticationError(f'unsupported mechanism {mechanism}')


def _amqplain_fields(raw: bytes) -> dict[str, bytes]:
    """The fields of an AMQPLAIN response: a field table without its length
    prefix, whose values are long strings (``S``), as every client sends
    LOGIN and PASSWORD.  Anything else is refused, in one bounded pass."""
    fields: dict[str, bytes] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            n = raw[pos]
            name = raw[pos + 1:pos + 1 + n].decode(errors='replace')
            pos += 1 + n
            if raw[pos:pos + 1] != b'S':
                raise AuthenticationError(
                    f'malformed AMQPLAIN response: field {name!r} is not a long string')
            size = struct.unpack_from('>I', raw, pos + 1)[0]
            pos += 5
            if pos + size > end:
                raise AuthenticationError('malformed AMQPLAIN response: truncated')
            fields[name] = raw[pos:pos + size]
            pos += size
    except (IndexError, struct.error):
        raise AuthenticationError('malformed AMQPLAIN response: truncated') from None
    return fields


class Users:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}

    def add(self, name: str, password: str, vhosts: set[str] | None = None,
            loopback_only: bool = False, tags: list[str] | None = None) -> User:
        user = User(name, hash_password(password), tags or [], vhosts or {'/'},
                    loopback_only)
        self.users[name] = user
        return user

    def authenticate(self, mechanism: str, response: bytes | str,
                     from_loopback: bool) -> User:
        username, password = parse_response(mechanism, response)
        user = self.users.get(username)
        if user is None or not check_password(password, user.password_hash):
            raise AuthenticationError(f"user '{username}': invalid credentials")
        if user.loopback_only and not from_loopback:
            raise AuthenticationError(
                f"user '{username}' can only connect via localhost")
        return user
