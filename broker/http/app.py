"""The management API's aiohttp application and its router.

One catch-all route takes every request and :func:`dispatch` does the
routing itself on the raw path, as RabbitMQ does: each segment is
percent-decoded on its own (``%2F`` is the vhost ``/``; ``+`` stays a
plus), a trailing slash is ignored (``/api/queues/`` is ``/api/queues``),
an empty segment is a 404.  Then, in RabbitMQ's order: 405 (with
``allow``) for a method the resource lacks, OPTIONS, authentication, the
handler.  Errors raised anywhere become RabbitMQ's JSON error bodies; an
unexpected exception is logged and answered with an empty 500, never a
traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from . import (
    bindings,
    celery,
    channels,
    connections,
    consumers,
    definitions,
    exchanges,
    health,
    limits,
    nodes,
    overview,
    permissions,
    queues,
    users,
    vhosts,
)
from .auth import authenticate
from .errors import ApiError, not_found
from .ports import BrokerPort
from .reply import Reply
from .request import Call

log = logging.getLogger(__name__)

Handler = Callable[[Call], Awaitable[Any]]
#: Largest request body (a definitions import can be large).
MAX_BODY = 256 * 1024 * 1024
#: Items JSON-encoded between two yields to the event loop.
ENCODE_CHUNK = 200

RESOURCES = (overview, queues, exchanges, bindings, connections, channels, consumers, vhosts,
             users, permissions, limits, nodes, definitions, health, celery)


class Route:
    def __init__(self, pattern: str, handlers: dict[str, Handler]) -> None:
        self.segments = tuple(pattern.split('/')) if pattern else ()
        self.handlers = handlers
        self.literals = sum(1 for s in self.segments if not s.startswith('{'))
        methods = list(handlers)
        if 'GET' in methods:
            methods.insert(0, 'HEAD')
        self.allow = ', '.join(methods + ['OPTIONS'])

    def match(self, segments: list[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        params = {}
        for want, got in zip(self.segments, segments, strict=True):
            if want.startswith('{'):
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


def routes() -> list[Route]:
    found = [Route(pattern, handlers) for module in RESOURCES
             for pattern, handlers in module.ROUTES]
    # Literal segments win over parameters (users/bulk-delete over users/{name}).
    found.sort(key=lambda r: -r.literals)
    return found


def split_path(raw: str) -> list[str] | None:
    """The segments after ``/api/``, decoded; None for a path RabbitMQ 404s."""
    parts = raw.split('/')
    if parts and parts[-1] == '':
        parts.pop()
    if any(p == '' for p in parts):
        return None
    return [unquote(p) for p in parts]


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(',', ':'), ensure_ascii=False).encode()


async def encode(data: Any) -> bytes:
    """JSON, a long list encoded a chunk at a time between loop turns (also
    the long lists of an object: a page's ``items``, a definitions export's
    ``queues`` and ``bindings``)."""
    if isinstance(data, list) and len(data) > ENCODE_CHUNK:
        pieces = []
        for start in range(0, len(data), ENCODE_CHUNK):
            chunk = json_bytes(data[start:start + ENCODE_CHUNK])
            pieces.append(chunk[1:-1])
            await asyncio.sleep(0)
        return b'[' + b','.join(p for p in pieces if p) + b']'
    if isinstance(data, dict) and any(isinstance(v, list) and len(v) > ENCODE_CHUNK
                                      for v in data.values()):
        members = [json_bytes(str(k)) + b':' + await encode(v) for k, v in data.items()]
        return b'{' + b','.join(members) + b'}'
    return json_bytes(data)


def _error_response(exc: ApiError) -> web.Response:
    headers = {'vary': 'origin', **exc.headers}
    if exc.empty:
        return web.Response(status=exc.status, headers=headers)
    return web.Response(status=exc.status, body=json_bytes(exc.body()),
                        content_type='application/json', headers=headers)


def make_app(broker: BrokerPort,
             extensions: Sequence[Callable[[web.Application], None]] = ()) -> web.Application:
    """The API's application; each of ``extensions`` may add routes of its
    own (the dashboard's) before the API's catch-all."""
    table = routes()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        if raw == '/api':
            raw = '/api/'
        segments = split_path(raw[len('/api/'):]) if raw.startswith('/api/') else None
        try:
            if segments is None:
                raise not_found()
            route = params = None
            for candidate in table:
                params = candidate.match(segments)
                if params is not None:
                    route = candidate
                    break
            if route is None or params is None:
                raise not_found()
            method = 'GET' if request.method == 'HEAD' else request.method
            if request.method == 'OPTIONS':
                return web.Response(status=200, headers={'allow': route.allow,
                                                         'vary': 'origin'})
            handler = route.handlers.get(method)
            if handler is None:
                return web.Response(status=405, headers={'allow': route.allow,
                                                         'vary': 'origin'})
            user = authenticate(request.headers.get('Authorization'), broker.users)
            body = await request.read() if request.can_read_body else b''
            call = Call(broker, method, user, params, dict(request.query),
                        dict(request.headers), body)
            result = await handler(call)
        except ApiError as exc:
            return _error_response(exc)
        except web.HTTPException:
            raise
        except Exception:
            log.exception('management API: %s %s failed', request.method, request.path_qs)
            return web.Response(status=500)
        reply = result if isinstance(result, Reply) else Reply(200, result)
        headers = {'vary': 'accept, accept-encoding, origin', **reply.headers}
        if reply.empty:
            return web.Response(status=reply.status, headers=headers)
        if method == 'GET':
            headers['cache-control'] = 'no-cache'
        return web.Response(status=reply.status, body=await encode(reply.data),
                            content_type='application/json', headers=headers)

    app = web.Application(client_max_size=MAX_BODY)
    for extend in extensions:
        extend(app)
    app.router.add_route('*', '/{tail:.*}', dispatch)
    return app
