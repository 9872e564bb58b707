"""Users, their tags and permissions, and the SASL mechanisms PLAIN and AMQPLAIN.

The shape is RabbitMQ's: a user has a password hash and tags
(``administrator``, ``monitoring``, ``policymaker``, ``management``, or any
other word); per user and vhost a permission entry holds three regular
expressions (configure, write, read).  A connection to a vhost is refused
unless the user has an entry for it; :mod:`.access` gives the expressions
their meaning on every AMQP operation.

Passwords are hashed as RabbitMQ's ``rabbit_password_hashing_sha256``:
base64 of a 4-byte salt followed by SHA-256(salt + password), so hashes
exported from RabbitMQ log in here and the other way round.  The hex form
that earlier Leveret versions wrote (the same bytes, hex-encoded) is still
accepted.

Every change goes to :attr:`Users.listener` (the broker journals it), and
takes effect at once for new logins and new connections.  ``guest`` may log
in from loopback only unless the configuration says otherwise, as in RabbitMQ.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

MECHANISMS = ('PLAIN', 'AMQPLAIN')
HASHING_ALGORITHM = 'rabbit_password_hashing_sha256'
#: Tags that mean something to the management API.
KNOWN_TAGS = ('administrator', 'monitoring', 'policymaker', 'management', 'impersonator')


class AuthenticationError(Exception):
    """Login refused; the text goes to the log, never to the client."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's salted SHA-256 hash, base64-encoded."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def _hash_bytes(stored: str) -> bytes | None:
    """The salt and digest of a stored hash (base64, or the old hex form)."""
    if len(stored) == 72:
        try:
            return bytes.fromhex(stored)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 36 else None


def valid_hash(stored: str) -> bool:
    return _hash_bytes(stored) is not None


def check_password(password: str, stored: str) -> bool:
    raw = _hash_bytes(stored)
    if raw is None:
        return False
    salt, digest = raw[:4], raw[4:]
    return hmac.compare_digest(hashlib.sha256(salt + password.encode()).digest(), digest)


def parse_tags(value: str | Iterable[str] | None) -> list[str]:
    """Tags as the API takes them: a comma-separated string or a list.

    Raises ValueError for anything else (a number, a list of numbers)."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[str] = value.split(',')
    elif isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        items = value
    else:
        raise ValueError('tags must be a comma-separated string or a list of strings')
    return [t.strip() for t in items if t.strip()]


@dataclass
class User:
    name: str
    password_hash: str
    tags: list[str] = field(default_factory=list)
    hashing_algorithm: str = HASHING_ALGORITHM
    #: RabbitMQ's user limits: ``max-connections``, ``max-queues``.
    limits: dict[str, int] = field(default_factory=dict)

    def has_tag(self, *tags: str) -> bool:
        return any(tag in self.tags for tag in tags)


@dataclass(frozen=True)
class Permission:
    """Regular expressions over resource names, RabbitMQ's three kinds."""

    configure: str = '.*'
    write: str = '.*'
    read: str = '.*'


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str = '.*'
    read: str = '.*'


class UsersListener(Protocol):
    """Told of every change (the broker's definitions journal)."""

    def user_saved(self, user: User) -> None: ...
    def user_deleted(self, name: str) -> None: ...
    def permission_saved(self, vhost: str, user: str, permission: Permission) -> None: ...
    def permission_deleted(self, vhost: str, user: str) -> None: ...
    def topic_permission_saved(self, vhost: str, user: str,
                               permission: TopicPermission) -> None: ...
    def topic_permission_deleted(self, vhost: str, user: str, exchange: str) -> None: ...


class _Silent:
    def user_saved(self, user: User) -> None:
        pass

    def user_deleted(self, name: str) -> None:
        pass

    def permission_saved(self, vhost: str, user: str, permission: Permission) -> None:
        pass

    def permission_deleted(self, vhost: str, user: str) -> None:
        pass

    def topic_permission_saved(self, vhost: str, user: str,
                               permission: TopicPermission) -> None:
        pass

    def topic_permission_deleted(self, vhost: str, user: str, exchange: str) -> None:
        pass


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
    def __init__(self, loopback_users: Iterable[str] = ()) -> None:
        self.users: dict[str, User] = {}
        #: (vhost, user) -> permission entry
        self.permissions: dict[tuple[str, str], Permission] = {}
        #: (vhost, user, exchange) -> topic permission
        self.topic_permissions: dict[tuple[str, str, str], TopicPermission] = {}
        #: Users that may log in from loopback addresses only.
        self.loopback_users = set(loopback_users)
        self.listener: UsersListener = _Silent()

    # --- users --------------------------------------------------------------
    def add(self, name: str, password: str, vhosts: set[str] | None = None,
            loopback_only: bool = False, tags: list[str] | None = None) -> User:
        """A user with full permissions on ``vhosts`` (``/`` by default)."""
        user = self.put(name, password_hash=hash_password(password), tags=tags or [])
        for vhost in sorted(vhosts or {'/'}):
            self.set_permission(vhost, name, Permission())
        if loopback_only:
            self.loopback_users.add(name)
        return user

    def put(self, name: str, password_hash: str, tags: list[str],
            hashing_algorithm: str = HASHING_ALGORITHM,
            limits: dict[str, int] | None = None) -> User:
        """Create or replace a user (a replaced one keeps its limits unless given)."""
        if limits is None:
            old = self.users.get(name)
            limits = dict(old.limits) if old is not None else {}
        user = User(name, password_hash, list(tags), hashing_algorithm, dict(limits))
        self.users[name] = user
        self.listener.user_saved(user)
        return user

    def set_limits(self, name: str, limits: dict[str, int]) -> None:
        """Replace a user's limits (saved like the user)."""
        user = self.users[name]
        user.limits = dict(limits)
        self.listener.user_saved(user)

    def delete(self, name: str) -> bool:
        """Delete a user and every permission of it; False if there was none."""
        if self.users.pop(name, None) is None:
            return False
        for key in [k for k in self.permissions if k[1] == name]:
            del self.permissions[key]
            self.listener.permission_deleted(*key)
        for tkey in [k for k in self.topic_permissions if k[1] == name]:
            del self.topic_permissions[tkey]
            self.listener.topic_permission_deleted(*tkey)
        self.listener.user_deleted(name)
        return True

    # --- permissions --------------------------------------------------------
    def set_permission(self, vhost: str, user: str, permission: Permission) -> None:
        self.permissions[(vhost, user)] = permission
        self.listener.permission_saved(vhost, user, permission)

    def clear_permission(self, vhost: str, user: str) -> bool:
        if self.permissions.pop((vhost, user), None) is None:
            return False
        self.listener.permission_deleted(vhost, user)
        return True

    def set_topic_permission(self, vhost: str, user: str,
                             permission: TopicPermission) -> None:
        self.topic_permissions[(vhost, user, permission.exchange)] = permission
        self.listener.topic_permission_saved(vhost, user, permission)

    def clear_topic_permissions(self, vhost: str, user: str,
                                exchange: str | None = None) -> int:
        keys = [k for k in self.topic_permissions
                if k[0] == vhost and k[1] == user and (exchange is None or k[2] == exchange)]
        for key in keys:
            del self.topic_permissions[key]
            self.listener.topic_permission_deleted(*key)
        return len(keys)

    def vhost_deleted(self, vhost: str) -> None:
        """Drop every permission on a vhost that is gone."""
        for key in [k for k in self.permissions if k[0] == vhost]:
            self.clear_permission(*key)
        for tkey in [k for k in self.topic_permissions if k[0] == vhost]:
            del self.topic_permissions[tkey]
            self.listener.topic_permission_deleted(*tkey)

    def may_open(self, user: str, vhost: str) -> bool:
        """A connection to ``vhost`` needs a permission entry there."""
        return (vhost, user) in self.permissions

    def vhosts_of(self, user: str) -> list[str]:
        return sorted(v for v, u in self.permissions if u == user)

    # --- logging in -----------------------------------------------------------
    def check(self, username: str, password: str) -> User | None:
        """The user if the password is right, else None."""
        user = self.users.get(username)
        if user is None or not check_password(password, user.password_hash):
            return None
        return user

    def authenticate_external(self, username: str, from_loopback: bool) -> User:
        """SASL EXTERNAL: the user a verified client certificate names must exist."""
        user = self.users.get(username)
        if user is None:
            raise AuthenticationError(f"user '{username}' (from the client certificate): "
                                      f"no such user")
        if username in self.loopback_users and not from_loopback:
            raise AuthenticationError(
                f"user '{username}' can only connect via localhost")
        return user

    def authenticate(self, mechanism: str, response: bytes | str,
                     from_loopback: bool) -> User:
        username, password = parse_response(mechanism, response)
        user = self.check(username, password)
        if user is None:
            raise AuthenticationError(f"user '{username}': invalid credentials")
        if username in self.loopback_users and not from_loopback:
            raise AuthenticationError(
                f"user '{username}' can only connect via localhost")
        return user
