"""The management API over HTTP (urllib: nothing to install)."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote


class Refused(Exception):
    """The broker said no; the text is its reason."""


class Unreachable(Exception):
    """No broker answered at the URL."""


def segment(value: str) -> str:
    """A path segment: ``/`` is ``%2F``, as the API wants vhosts."""
    return quote(value, safe='')


class Client:
    def __init__(self, url: str, user: str, password: str, timeout: float = 30.0, *,
                 cafile: str | None = None, certfile: str | None = None,
                 keyfile: str | None = None) -> None:
        self.base = url.rstrip('/')
        if not self.base.endswith('/api'):
            self.base += '/api'
        token = base64.b64encode(f'{user}:{password}'.encode()).decode()
        self.auth = f'Basic {token}'
        self.timeout = timeout
        #: For an https:// API: the CA to trust, and a client certificate if asked.
        self.context: ssl.SSLContext | None = None
        if self.base.startswith('https://'):
            try:
                self.context = ssl.create_default_context(cafile=cafile)
                if certfile:
                    self.context.load_cert_chain(certfile, keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise Unreachable(f'cannot use the TLS files: {exc}') from None

    def request(self, method: str, path: str, body: Any = None, *,
                headers: dict[str, str] | None = None, raw: bytes | None = None) -> Any:
        """JSON out (None for an empty answer); Refused or Unreachable otherwise."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header('Authorization', self.auth)
        if data is not None:
            request.add_header('Content-Type', 'application/json')
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.context) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as error:
            raise Refused(_reason(error.code, error.read(), path)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, 'reason', error)
            raise Unreachable(f'cannot reach {self.base}: {reason}') from None
        except http.client.HTTPException:
            # Something listens there, but it does not speak HTTP (an AMQP port?).
            raise Unreachable(f'cannot reach {self.base}: the answer is not HTTP') from None
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise Refused(f'the broker answered something that is not JSON: '
                          f'{payload[:200]!r}') from None

    def get(self, path: str) -> Any:
        return self.request('GET', path)


def _reason(status: int, payload: bytes, path: str) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if status == 404 and (not isinstance(body, dict) or body.get('reason') == 'Not Found'):
        return f'not found: {path.partition("?")[0]} (404)'
    if isinstance(body, dict) and 'reason' in body:
        reason = body['reason']
        if not isinstance(reason, str):
            reason = json.dumps(reason)
        return f'{reason} ({status})'
    if status == 401:
        return 'access refused: check the user and password (401)'
    return f'the broker answered {status}'
