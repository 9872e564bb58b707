"""Who is logged in to the dashboard: the broker's own users and tags, as
the management API checks them (``http.auth``), held in a session cookie.

A session is a random token in an HttpOnly, SameSite=Strict cookie; each
has its own token for forms, which every POST must carry back.  Sessions
live in memory only (a restart logs everyone out) and end after
:data:`IDLE_TIMEOUT` without a request, or when the user is deleted, loses
its management tags or logs out.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from ..auth import User, Users
from ..http.auth import MANAGEMENT_TAGS

COOKIE = 'leveret_session'
#: Seconds a session lasts without a request.
IDLE_TIMEOUT = 8 * 3600.0


@dataclass
class Session:
    username: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    last_seen: float = field(default_factory=time.monotonic)


class Logins:
    def __init__(self, users: Users) -> None:
        self.users = users
        self._sessions: dict[str, Session] = {}

    def log_in(self, username: str, password: str) -> tuple[str, Session] | None:
        """A new session for a management user with that password, else None."""
        user = self.users.check(username, password)
        if user is None or not user.has_tag(*MANAGEMENT_TAGS):
            return None
        self._expire()
        token = secrets.token_urlsafe(32)
        session = self._sessions[token] = Session(user.name)
        return token, session

    def find(self, token: str | None) -> tuple[Session, User] | None:
        """The session of a cookie and its user, while both are still valid."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = time.monotonic()
        user = self.users.users.get(session.username)
        if (now - session.last_seen > IDLE_TIMEOUT or user is None
                or not user.has_tag(*MANAGEMENT_TAGS)):
            del self._sessions[token]
            return None
        session.last_seen = now
        return session, user

    def log_out(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for token, session in list(self._sessions.items()):
            if now - session.last_seen > IDLE_TIMEOUT:
                del self._sessions[token]
