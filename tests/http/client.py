"""A small HTTP client for the management API tests (urllib: no extra dependency)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(base: str, method: str, path: str, body: Any = None, *, user: str | None = 'guest',
         password: str | None = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> Answer:
    """``method`` ``base + path``; ``body`` sent as JSON (or ``raw`` bytes as they are)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                        else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    if user is not None:
        secret = password if password is not None else user
        token = base64.b64encode(f'{user}:{secret}'.encode()).decode()
        request.add_header('Authorization', f'Basic {token}')
    if data is not None:
        request.add_header('Content-Type', 'application/json')
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()},
                          response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()},
                      error.read())


class Api:
    """The API of one broker, as one user."""

    def __init__(self, base: str, user: str = 'guest', password: str | None = None) -> None:
        self.base = base
        self.user = user
        self.password = password

    def as_user(self, user: str, password: str) -> Api:
        return Api(self.base, user, password)

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
        kwargs.setdefault('user', self.user)
        kwargs.setdefault('password', self.password)
        return call(self.base, method, path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        answer = self('GET', path, **kwargs)
        assert answer.status == 200, (path, answer.status, answer.body)
        return answer.json

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self('PUT', path, body, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self('POST', path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Answer:
        return self('DELETE', path, **kwargs)
