"""The broker process: listening socket, virtual hosts, users, shutdown.

Users, vhosts and permissions come from the settings at the first start of
a data directory only; from then on the saved definitions are what counts
(changed at run time through the management API or ``leveret ctl``), and a
settings user that differs from the saved one is only logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import signal
import sys
import time
from typing import Any

from . import __version__, definitions, rabbit_definitions, recovery
from .auth import Users, check_password
from .config import Settings
from .loop_clock import LoopClock
from .model.counters import ChurnCounters
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
        #: Every change to what a restart recreates goes to the store through it.
        self.recorder = definitions.Recorder(self.store)
        #: Wall-clock start time (the API's uptime).
        self.started_at = time.time()
        self.clock = LoopClock()
        self.vhosts: dict[str, VirtualHost] = {}
        self.users = Users(settings.loopback_users)
        self.users.listener = self.recorder
        self.memory = MemoryMonitor(settings.memory_high_watermark or default_high_watermark())
        self.resident = ResidentWatch(self.memory, self.clock)
        #: Connections, channels and queues created and closed, broker-wide.
        self.churn = ChurnCounters()
        self._server: asyncio.base_events.Server | None = None
        #: The management API (None when ``management_enabled`` is false).
        self.management: Any = None
        #: The API's ``node`` and ``cluster_name``.
        self.node_name = f'leveret@{platform.node()}'
        server_properties: dict[str, Any] = {
            'product': 'Leveret',
            'version': __version__,
            'platform': f'Python {platform.python_version()}',
            'copyright': 'Leveret contributors',
            'information': 'Licensed under the MIT licence',
            'cluster_name': f'leveret@{platform.node()}',
            'capabilities': dict(CAPABILITIES),
        }
        self.sessions = Sessions(settings, self.users, self.vhosts, server_properties,
                                 churn=self.churn)

    # --- vhosts -------------------------------------------------------------
    def add_vhost(self, name: str, description: str | None = None,
                  tags: list[str] | None = None) -> VirtualHost:
        """Find or create a vhost (and save it, with its metadata)."""
        vhost = self.vhosts.get(name)
        created = vhost is None
        if vhost is None:
            vhost = self.vhosts[name] = VirtualHost(name, self.store, self.clock, self.memory,
                                                    self.recorder, churn=self.churn)
        changed = created
        if description is not None and description != vhost.description:
            vhost.description, changed = description, True
        if tags is not None and tags != vhost.tags:
            vhost.tags, changed = list(tags), True
        if changed:
            self.recorder.vhost_saved(vhost)
        return vhost

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost with everything in it; its connections are closed."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            return False
        for connection in list(self.sessions.connections):
            if connection.vhost is vhost:
                connection.force_close(f"vhost '{name}' is deleted")
        for queue in list(vhost.queues.values()):
            vhost.delete_queue(queue)
        for exchange_name in list(vhost.exchanges):
            if exchange_name and not exchange_name.startswith('amq.'):
                vhost.delete_exchange(exchange_name)
        del self.vhosts[name]
        self.users.vhost_deleted(name)
        self.recorder.vhost_dropped(name)
        return True

    # --- start-up -----------------------------------------------------------
    def open_store(self) -> None:
        """Lock the data directory and bring back what it holds."""
        self.store.open()
        self.recorder.muted = True
        try:
            saved, report = recovery.recover(self.store, self.vhosts, self.add_vhost,
                                             self.users)
            if saved is None or not saved.users:
                self._seed_from_settings()
            else:
                self._compare_with_settings()
        finally:
            self.recorder.muted = False
        # Only what differs from the saved items is written.
        self.store.replace_definitions(definitions.everything(self.vhosts, self.users))
        queues = sum(len(vhost.queues) for vhost in self.vhosts.values())
        log.info('%d users, %d vhosts, %d queues and %d messages after recovery%s',
                 len(self.users.users), len(self.vhosts), queues, report.messages,
                 f' ({report.quarantined} records quarantined)' if report.quarantined else '')

    def _settings_users(self) -> list[tuple[str, str, list[str], list[str]]]:
        """(name, password, vhosts, tags) of every user the settings name."""
        s = self.settings
        return [(s.default_user, s.default_pass, [s.default_vhost], ['administrator'])] + [
            (u.name, u.password, list(u.vhosts), list(u.tags)) for u in s.users]

    def _seed_from_settings(self) -> None:
        """First start of a data directory: the settings' vhosts and users."""
        for vhost_name in self.settings.all_vhosts():
            self.add_vhost(vhost_name, description='Default virtual host'
                           if vhost_name == self.settings.default_vhost else None)
        for name, password, vhosts, tags in self._settings_users():
            self.users.add(name, password, vhosts=set(vhosts), tags=tags)

    def _compare_with_settings(self) -> None:
        """The saved users win; say so for each settings user that differs."""
        for name, password, vhosts, tags in self._settings_users():
            user = self.users.users.get(name)
            if user is None:
                log.warning("settings user '%s' is not among the saved users (deleted at run "
                            "time?): not created; the saved definitions win", name)
            elif (not check_password(password, user.password_hash)
                  or sorted(user.tags) != sorted(tags)
                  or any(not self.users.may_open(name, v) for v in vhosts)):
                log.warning("settings user '%s' differs from the saved one (password, tags or "
                            "vhosts): the saved one is kept; change it with 'leveret ctl' or "
                            "the management API", name)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    # --- what the management API asks of the process (its BrokerPort) --------------
    def listeners(self) -> list[dict[str, Any]]:
        found = []
        if self._server is not None and self._server.sockets:
            found.append({'protocol': 'amqp', 'ip_address': self.settings.host,
                          'port': self.port})
        if self.management is not None:
            found.append({'protocol': 'http', 'ip_address': self.management.host,
                          'port': self.management.port})
        return found

    def export_definitions(self, vhost: str | None = None) -> dict[str, Any]:
        return rabbit_definitions.export(self, vhost)

    def import_definitions(self, document: dict[str, Any],
                           vhost: str | None = None) -> list[str]:
        return rabbit_definitions.import_definitions(self, document, vhost)

    def _load_definitions_file(self) -> None:
        """The ``load_definitions`` setting: a RabbitMQ definitions file, at start."""
        path = self.settings.load_definitions
        if path is None:
            return
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise OSError(f'load_definitions: cannot read {path}: {exc}') from None
        try:
            report = self.import_definitions(document)
        except rabbit_definitions.DefinitionsRefused as exc:
            raise OSError(f'load_definitions: {path} refused: {exc}') from None
        log.info('definitions loaded from %s%s', path,
                 f' ({len(report)} items not applied, see above)' if report else '')

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        log.info('Leveret %s starting: data directory %s, %s', __version__, settings.data_dir,
                 f'config file {self.config_file}' if self.config_file else 'no config file')
        self.open_store()
        self._load_definitions_file()
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
        if settings.management_enabled:
            from .http.server import ManagementServer
            self.management = ManagementServer(self, settings.management_host,
                                               settings.management_port)
            await self.management.start()
        log.info('Leveret %s listening on %s:%d', __version__, settings.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, close every connection with 320, release the store."""
        if self._server is not None:
            self._server.close()
        if self.management is not None:
            await self.management.stop()
        self.sessions.shutdown()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self.sessions.abort()
        if self._server is not None:
            await self._server.wait_closed()
        for vhost in self.vhosts.values():
            for queue in vhost.queues.values():
                queue.finish_slices()       # a big purge's removals reach the log
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
