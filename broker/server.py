"""The broker process: listening socket, virtual hosts, users, shutdown."""

from __future__ import annotations

import asyncio
import logging
import platform
import signal
import sys
from typing import Any

from . import __version__, definitions, recovery
from .auth import Users
from .config import Settings
from .loop_clock import LoopClock
from .model.memory import MemoryMonitor, default_high_watermark
from .model.vhost import VirtualHost
from .resident import ResidentWatch
from .session import Connection, Sessions
from .session.bugs import log_bug
from .store import Store
from .store.disk import DiskStore

log = logging.getLogger('leveret')

#: Capabilities advertised in connection.start: only what is implemented.
CAPABILITIES = {
    'publisher_confirms': True,
    'exchange_exchange_bindings': True,
    'basic.nack': True,
    'consumer_cancel_notify': True,
    'connection.blocked': True,
    'authentication_failure_close': True,
    'per_consumer_qos': True,
}

#: Seconds connections get to finish closing on shutdown.
SHUTDOWN_GRACE = 5.0


class Broker:
    def __init__(self, settings: Settings, store: Store | None = None,
                 config_file: str | None = None) -> None:
        self.settings = settings
        #: The TOML file the settings came from, if any (for the log).
        self.config_file = config_file
        self.store: Store = store if store is not None else DiskStore(  # type: ignore[assignment]
            settings.data_dir, fsync=settings.fsync, segment_size=settings.segment_size)
        #: True until the store is open: nothing may be saved before that.
        self._restoring = True
        self.clock = LoopClock()
        self.vhosts: dict[str, VirtualHost] = {}
        self.users = Users()
        self.memory = MemoryMonitor(settings.memory_high_watermark or default_high_watermark())
        self.resident = ResidentWatch(self.memory, self.clock)
        self._server: asyncio.base_events.Server | None = None
        server_properties: dict[str, Any] = {
            'product': 'Leveret',
            'version': __version__,
            'platform': f'Python {platform.python_version()}',
            'copyright': 'Leveret contributors',
            'information': 'Licensed under the MIT licence',
            'cluster_name': f'leveret@{platform.node()}',
            'capabilities': dict(CAPABILITIES),
        }
        self.sessions = Sessions(settings, self.users, self.vhosts, server_properties)
        for vhost_name in settings.all_vhosts():
            self.add_vhost(vhost_name)
        self.users.add(settings.default_user, settings.default_pass,
                       vhosts={settings.default_vhost},
                       loopback_only=settings.default_user in settings.loopback_users,
                       tags=['administrator'])
        for user in settings.users:
            self.users.add(user.name, user.password, vhosts=set(user.vhosts),
                           loopback_only=user.name in settings.loopback_users, tags=user.tags)

    def add_vhost(self, name: str) -> VirtualHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(name, self.store, self.clock, self.memory,
                                                    self.definitions_changed)
            self.definitions_changed()
        return vhost

    def definitions_changed(self) -> None:
        """A durable exchange, queue or binding changed: save them all."""
        if not self._restoring:
            self.store.save_definitions(definitions.export(self.vhosts, self.users))

    def open_store(self) -> None:
        """Lock the data directory and bring back what it holds."""
        self.store.open()
        self._restoring = True
        try:
            report = recovery.recover(self.store, self.vhosts, self.add_vhost, self.users)
        finally:
            self._restoring = False
        self.definitions_changed()
        queues = sum(len(vhost.queues) for vhost in self.vhosts.values())
        log.info('%d users, %d vhosts, %d queues and %d messages after recovery%s',
                 len(self.users.users), len(self.vhosts), queues, report.messages,
                 f' ({report.quarantined} records quarantined)' if report.quarantined else '')

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        log.info('Leveret %s starting: data directory %s, %s', __version__, settings.data_dir,
                 f'config file {self.config_file}' if self.config_file else 'no config file')
        self.open_store()
        self.store.attach(loop, lambda: recovery.live_messages(self.vhosts.values(),
                                                               self.sessions.unacked))
        try:
            self._server = await loop.create_server(
                lambda: Connection(self.sessions), settings.host, settings.port,
                backlog=1024, reuse_address=True)
        except OSError as exc:
            self.store.close()
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f'cannot listen on {settings.host}:{settings.port}: '
                                     f'{reason}') from None
        self.memory.start_trimming(self.clock)
        self.resident.start()
        log.info('memory high watermark %d MiB (%d MiB in use at start)',
                 self.memory.watermark >> 20, self.memory.base >> 20)
        log.info('Leveret %s listening on %s:%d', __version__, settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close every connection with 320, release the store."""
        if self._server is not None:
            self._server.close()
        self.sessions.shutdown()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self.sessions.abort()
        if self._server is not None:
            await self._server.wait_closed()
        self.memory.stop_trimming()
        self.resident.stop()
        self.sessions.connection_log.flush()
        self.store.close()
        log.info('Leveret stopped')


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format='%(asctime)s %(levelname)-7s %(name)s: %(message)s')


async def serve(settings: Settings, ready: asyncio.Event | None = None,
                config_file: str | None = None) -> None:
    """Run a broker until SIGTERM or SIGINT, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception)
    broker = Broker(settings, config_file=config_file)
    await broker.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
        log.info('signal received, shutting down')
    finally:
        await broker.stop()


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An exception no callback caught: a bug, logged once with its traceback."""
    exc = context.get('exception')
    if isinstance(exc, BaseException):
        log_bug(log, str(context.get('message', 'unhandled exception')), exc)
    else:
        loop.default_exception_handler(context)


def run(settings: Settings, config_file: str | None = None) -> None:
    configure_logging(settings.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(serve(settings, config_file=config_file))
    else:
        uvloop.run(serve(settings, config_file=config_file))
