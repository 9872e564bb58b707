"""The API's errors, shaped as RabbitMQ's: ``{"error": ..., "reason": ...}``.

Handlers raise; the router (:mod:`.app`) turns an :class:`ApiError` into
its response, and anything else into a 500 with an empty body (logged), as
RabbitMQ answers what it did not expect: never a traceback to the client.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, error: str, reason: Any, *,
                 empty: bool = False, headers: dict[str, str] | None = None) -> None:
        super().__init__(f'{status} {error}: {reason}')
        self.status = status
        self.error = error
        self.reason = reason
        #: Answer with no body at all (RabbitMQ does for some 400/401/500s).
        self.empty = empty
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {'error': self.error, 'reason': self.reason}


CHALLENGE = {'www-authenticate': 'Basic realm="RabbitMQ Management"'}


def not_found() -> ApiError:
    return ApiError(404, 'Object Not Found', 'Not Found')


def not_found_because(reason: str) -> ApiError:
    return ApiError(404, 'not_found', reason)


def bad_request(reason: Any) -> ApiError:
    return ApiError(400, 'bad_request', reason)


def not_authorised(reason: str) -> ApiError:
    return ApiError(401, 'not_authorised', reason)


def login_failed() -> ApiError:
    return ApiError(401, 'not_authorized', 'Login failed', headers=CHALLENGE)


def no_credentials() -> ApiError:
    return ApiError(401, '', '', empty=True, headers=CHALLENGE)


def access_refused() -> ApiError:
    return ApiError(401, 'not_authorised', 'Access refused.')


def key_missing(*keys: str) -> ApiError:
    """RabbitMQ prints the missing keys as an Erlang term."""
    return bad_request('[' + ','.join(f'{{key_missing,{k}}}' for k in keys) + ']')


def internal() -> ApiError:
    return ApiError(500, '', '', empty=True)
