"""The management API's HTTP server, run on the broker's own event loop.

aiohttp's ``AppRunner`` and ``SockSite`` start it without touching signal
handlers (the broker owns SIGTERM, SIGINT and SIGHUP); HTTPS is a second
site with the broker's reloadable TLS context.  The server also runs the
counters' :class:`~..model.counters.Sampler` every
:data:`~..model.counters.SAMPLE_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiohttp import web

from ..model.counters import SAMPLE_INTERVAL, Counted, Sampler
from .app import make_app
from .common import unacked_by_queue
from .ports import BrokerPort

log = logging.getLogger(__name__)

#: Objects sampled between two yields to the event loop.
SAMPLE_SLICE = 1000


class ManagementServer:
    """HTTP on ``port`` (unless ``plain`` is false) and HTTPS on ``tls_port``
    with ``tls_context`` (when given), one application behind both."""

    def __init__(self, broker: BrokerPort, host: str, port: int, *, plain: bool = True,
                 tls_context: ssl.SSLContext | None = None, tls_port: int = 15671,
                 extensions: Sequence[Callable[[web.Application], None]] = ()) -> None:
        self.broker = broker
        #: What adds routes of its own to the app (the dashboard).
        self.extensions = extensions
        self.host = host
        self.port = port
        self.plain = plain
        self.tls_context = tls_context
        self.tls_port = tls_port
        self._runner: web.AppRunner | None = None
        self._sites: list[web.SockSite] = []
        self._sampler = Sampler()
        self._sampling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(make_app(self.broker, self.extensions),
                                     handle_signals=False, access_log=None)
        await self._runner.setup()
        # Bound here rather than by TCPSite: with port 0 the port is known.
        if self.plain:
            sock = _listening_socket(self.host, self.port)
            self.port = sock.getsockname()[1]
            self._sites.append(web.SockSite(self._runner, sock))
        if self.tls_context is not None:
            sock = _listening_socket(self.host, self.tls_port)
            self.tls_port = sock.getsockname()[1]
            self._sites.append(web.SockSite(self._runner, sock, ssl_context=self.tls_context))
        for site in self._sites:
            await site.start()
        self._sampling = asyncio.get_running_loop().create_task(self._sample_forever())
        if self.plain:
            log.info('management API at http://%s:%d/api/', self.host, self.port)
        if self.tls_context is not None:
            log.info('management API at https://%s:%d/api/', self.host, self.tls_port)

    async def stop(self) -> None:
        if self._sampling is not None:
            self._sampling.cancel()
            self._sampling = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- rates ------------------------------------------------------------------
    def counted(self, unacked: dict[Any, tuple[int, int]]) -> Iterator[Counted]:
        """Everything with counters: queues, exchanges, channels, connections..."""
        broker = self.broker
        yield broker.churn
        for vhost in list(broker.vhosts.values()):
            yield vhost.closed_channels
            for queue in list(vhost.queues.values()):
                queue.sampled_unacked = unacked.get(queue, (0, 0))[0]
                yield queue
            yield from list(vhost.exchanges.values())
        for connection in list(broker.sessions.connections):
            yield connection
            yield from list(connection.channels.values())

    async def sample(self) -> None:
        """Take a sample of every counter, a slice at a time: with 10,000
        queues the loop is never held for the whole walk."""
        objects = list(self.counted(await unacked_by_queue(self.broker)))
        now = time.time()
        for start in range(0, len(objects), SAMPLE_SLICE):
            self._sampler.sample(objects[start:start + SAMPLE_SLICE], now)
            await asyncio.sleep(0)

    async def _sample_forever(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL)


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
