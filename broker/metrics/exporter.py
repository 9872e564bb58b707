"""The Prometheus endpoint: ``/metrics`` and ``/metrics/per-object`` on a
port of its own (``prometheus_host``, ``prometheus_port``; 15692, as
RabbitMQ's plugin).

A scrape copies the broker's numbers on the loop in slices
(:func:`.snapshot.take`), then builds the text with prometheus_client
(and gzips it when asked) in a thread of its own, so neither a big broker
nor a slow client holds up AMQP.  A collector that fails logs the error and
answers 500 for that scrape; the broker goes on.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from . import snapshot
from .families import AGGREGATED, PER_OBJECT, Host, families
from .snapshot import BrokerView, Snapshot

log = logging.getLogger(__name__)

#: RabbitMQ's answer to a path it does not serve.
NOT_FOUND = '{"error":"Object Not Found","reason":"Not Found"}'


class _SnapshotCollector:
    def __init__(self, snap: Snapshot, host: Host, endpoint: str) -> None:
        self.snap, self.host, self.endpoint = snap, host, endpoint

    def collect(self) -> Iterator[Metric]:
        return families(self.snap, self.host, self.endpoint)


def render(snap: Snapshot, host: Host, endpoint: str, compress: bool) -> bytes:
    """The exposition text of a snapshot (run off the event loop).

    The cyclic garbage collector is held off meanwhile: the text is made of
    many short-lived, acyclic objects that would otherwise set off full
    collections of the broker's whole heap, each holding the GIL (and so the
    event loop) for tens of milliseconds.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snap, host, endpoint))
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    collecting = gc.isenabled()
    gc.disable()
    try:
        text = generate_latest(registry)
    finally:
        if collecting:
            gc.enable()
    return gzip.compress(text, compresslevel=1) if compress else text


class Exporter:
    def __init__(self, broker: BrokerView, host: Host) -> None:
        self.broker = broker
        self.host = host
        self._runner: web.AppRunner | None = None
        #: One thread: scrapes are built one at a time, never on the loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix='metrics')
        #: The HTTP and HTTPS ports listened on (0: not listening).
        self.port = 0
        self.tls_port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get('/metrics', self._aggregated)
        app.router.add_get('/metrics/per-object', self._per_object)
        app.router.add_route('*', '/{tail:.*}', self._not_found)
        return app

    async def start(self, host: str, port: int, *, plain: bool = True,
                    tls_context: ssl.SSLContext | None = None, tls_port: int = 15691) -> None:
        """HTTP on ``port`` (unless ``plain`` is false) and HTTPS on
        ``tls_port`` with ``tls_context`` (when given)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        if plain:
            self.port = await self._listen(host, port, None)
            log.info('Prometheus metrics on http://%s:%d/metrics', host, self.port)
        if tls_context is not None:
            self.tls_port = await self._listen(host, tls_port, tls_context)
            log.info('Prometheus metrics on https://%s:%d/metrics', host, self.tls_port)

    async def _listen(self, host: str, port: int, context: ssl.SSLContext | None) -> int:
        """Start a site; the port it got (``port`` 0 picks a free one)."""
        assert self._runner is not None
        site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=context)
        await site.start()
        sockets = getattr(site._server, 'sockets', None) or []
        return sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def scrape(self, endpoint: str, compress: bool = False) -> bytes:
        snap = await snapshot.take(self.broker, summed=endpoint == AGGREGATED)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, render, snap, self.host, endpoint,
                                          compress)

    async def _respond(self, request: web.Request, endpoint: str) -> web.Response:
        compress = 'gzip' in request.headers.get('Accept-Encoding', '')
        try:
            body = await self.scrape(endpoint, compress)
        except Exception:
            log.exception('metrics collection failed (%s)', request.path)
            return web.Response(status=500, text='metrics collection failed; see the '
                                'broker log\n')
        headers = {'Content-Type': CONTENT_TYPE_PLAIN_0_0_4}
        if compress:
            headers['Content-Encoding'] = 'gzip'
        return web.Response(body=body, headers=headers)

    async def _aggregated(self, request: web.Request) -> web.Response:
        return await self._respond(request, AGGREGATED)

    async def _per_object(self, request: web.Request) -> web.Response:
        return await self._respond(request, PER_OBJECT)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text=NOT_FOUND, content_type='application/json')
