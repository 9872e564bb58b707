"""The broker process: listening socket, virtual hosts, users, shutdown.

Users, vhosts and permissions come from the settings at the first start of
a data directory only; from then on the saved definitions are what counts
(changed at run time through the management API or ``leveret ctl``), and a
settings user that differs from the saved one is only logged.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import platform
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

from . import __version__, definitions, rabbit_definitions, recovery
from .auth import Permission, Users, check_password, hash_password
from .config import Settings
from .gc_policy import CollectionPolicy
from .loop_clock import LoopClock
from .metrics.exporter import Exporter
from .metrics.families import Host
from .metrics.history import History
from .model.counters import ChurnCounters
from .model.memory import MemoryMonitor, default_high_watermark
from .model.vhost import VirtualHost
from .resident import ResidentWatch
from .session import Connection, Sessions
from .session.bugs import log_bug
from .store import Store
from .store.disk import DiskStore
from .tls import ReloadableContext, TlsError, tls_files

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
#: Seconds a client has for the TLS handshake (RabbitMQ's ssl_handshake_timeout is 5).
TLS_HANDSHAKE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SettingsUser:
    """A user as the settings give it: a password or its hash, a permission
    entry per vhost, tags."""

    name: str
    password: str | None
    password_hash: str | None
    permissions: dict[str, Permission]
    tags: list[str]

    def hash(self) -> str:
        return self.password_hash or hash_password(self.password or '')

    def matches(self, stored: str) -> bool:
        """Does the saved hash ``stored`` hold this password?"""
        if self.password_hash is not None:
            return stored == self.password_hash
        return check_password(self.password or '', stored)


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
        self.collection_policy = CollectionPolicy()
        #: Connections, channels and queues created and closed, broker-wide.
        self.churn = ChurnCounters()
        self._server: asyncio.base_events.Server | None = None
        self._tls_server: asyncio.base_events.Server | None = None
        #: The TLS contexts of amqps, the management API and the metrics (SIGHUP reloads them).
        self.amqp_tls: ReloadableContext | None = None
        self.management_tls: ReloadableContext | None = None
        self.prometheus_tls: ReloadableContext | None = None
        #: The Prometheus endpoint (prometheus_enabled), once started.
        self.exporter: Exporter | None = None
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
        #: Queue depths and task rates of the last minutes (the dashboard's).
        self.history = History(self.vhosts, self.sessions)

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

    def set_vhost_limits(self, name: str, limits: dict[str, int]) -> None:
        """Replace a vhost's limits (``max-connections``, ``max-queues``), saved."""
        vhost = self.vhosts[name]
        vhost.limits = dict(limits)
        self.recorder.vhost_saved(vhost)

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

    def _settings_users(self) -> list[SettingsUser]:
        """Every user the settings name, the default one first."""
        s = self.settings
        found = [SettingsUser(s.default_user, s.default_pass, None,
                              {s.default_vhost: Permission()}, ['administrator'])]
        for u in s.users:
            found.append(SettingsUser(
                u.name, u.password, u.password_hash,
                {vhost: Permission(p.configure, p.write, p.read)
                 for vhost, p in u.permission_entries().items()}, list(u.tags)))
        return found

    def _seed_from_settings(self) -> None:
        """First start of a data directory: the settings' vhosts and users."""
        for vhost_name in self.settings.all_vhosts():
            self.add_vhost(vhost_name, description='Default virtual host'
                           if vhost_name == self.settings.default_vhost else None)
        for user in self._settings_users():
            self.users.put(user.name, user.hash(), user.tags)
            for vhost, permission in sorted(user.permissions.items()):
                self.users.set_permission(vhost, user.name, permission)

    def _compare_with_settings(self) -> None:
        """The saved users win; say so for each settings user that differs."""
        for wanted in self._settings_users():
            user = self.users.users.get(wanted.name)
            if user is None:
                log.warning("settings user '%s' is not among the saved users (deleted at run "
                            "time?): not created; the saved definitions win", wanted.name)
            elif (not wanted.matches(user.password_hash)
                  or sorted(user.tags) != sorted(wanted.tags)
                  or any(self.users.permissions.get((v, wanted.name)) != p
                         for v, p in wanted.permissions.items())):
                log.warning("settings user '%s' differs from the saved one (password, tags or "
                            "permissions): the saved one is kept; change it with 'leveret ctl' "
                            "or the management API", wanted.name)

    @property
    def port(self) -> int:
        """The plain AMQP port actually bound (useful with port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def tls_port(self) -> int:
        """The amqps port actually bound."""
        assert self._tls_server is not None and self._tls_server.sockets
        return int(self._tls_server.sockets[0].getsockname()[1])

    # --- what the management API asks of the process (its BrokerPort) --------------
    def listeners(self) -> list[dict[str, Any]]:
        found = []
        if self._server is not None and self._server.sockets:
            found.append({'protocol': 'amqp', 'ip_address': self.settings.host,
                          'port': self.port})
        if self._tls_server is not None and self._tls_server.sockets:
            found.append({'protocol': 'amqp/ssl', 'ip_address': self.settings.host,
                          'port': self.tls_port})
        if self.management is not None:
            if self.management.plain:
                found.append({'protocol': 'http', 'ip_address': self.management.host,
                              'port': self.management.port})
            if self.management.tls_context is not None:
                found.append({'protocol': 'https', 'ip_address': self.management.host,
                              'port': self.management.tls_port})
        if self.exporter is not None:
            if self.exporter.port:
                found.append({'protocol': 'http/prometheus',
                              'ip_address': self.settings.prometheus_host,
                              'port': self.exporter.port})
            if self.exporter.tls_port:
                found.append({'protocol': 'https/prometheus',
                              'ip_address': self.settings.prometheus_host,
                              'port': self.exporter.tls_port})
        return found

    async def export_definitions(self, vhost: str | None = None) -> dict[str, Any]:
        return await rabbit_definitions.export(self, vhost)

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

    def load_tls(self) -> None:
        """The TLS contexts of the settings (before anything else: a bad
        certificate stops the start with :class:`~.tls.TlsError`)."""
        files = tls_files(self.settings, 'tls')
        self.amqp_tls = ReloadableContext(files) if files is not None else None
        files = tls_files(self.settings, 'management_tls')
        if files is not None and self.settings.management_enabled:
            self.management_tls = ReloadableContext(files)
        files = tls_files(self.settings, 'prometheus_tls')
        if files is not None and self.settings.prometheus_enabled:
            self.prometheus_tls = ReloadableContext(files)

    def reload_tls(self) -> None:
        """SIGHUP: read the certificates again for new connections; open ones
        keep theirs.  A failure is logged and the old certificates stay."""
        for name, context in (('amqps', self.amqp_tls), ('management', self.management_tls),
                              ('prometheus', self.prometheus_tls)):
            if context is None:
                continue
            try:
                context.reload()
            except TlsError as exc:
                log.error('%s TLS certificates not reloaded (the old ones stay): %s', name, exc)
            else:
                log.info('%s TLS certificates reloaded from %s', name, context.files.certfile)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        self.load_tls()
        log.info('Leveret %s starting: data directory %s, %s', __version__, settings.data_dir,
                 f'config file {self.config_file}' if self.config_file else 'no config file')
        self.open_store()
        self._load_definitions_file()
        self.store.attach(loop, lambda: recovery.live_messages(self.vhosts.values(),
                                                               self.sessions.unacked))
        try:
            if settings.plain_listener:
                self._server = await loop.create_server(
                    lambda: Connection(self.sessions), settings.host, settings.port,
                    backlog=1024, reuse_address=True)
            if self.amqp_tls is not None:
                self._tls_server = await loop.create_server(
                    lambda: Connection(self.sessions), settings.host, settings.tls_port,
                    ssl=self.amqp_tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
                    backlog=1024, reuse_address=True)
        except OSError as exc:
            self.store.close()
            port = settings.tls_port if self._server is not None else settings.port
            reason = exc.strerror or str(exc)
            raise OSError(exc.errno, f'cannot listen on {settings.host}:{port}: '
                                     f'{reason}') from None
        self.memory.start_trimming(self.clock)
        self.resident.start()
        log.info('memory high watermark %d MiB (%d MiB in use at start)',
                 self.memory.watermark >> 20, self.memory.base >> 20)
        self.history.start()
        if settings.prometheus_enabled:
            self.exporter = Exporter(self, Host(settings.data_dir))
            await self.exporter.start(settings.prometheus_host, settings.prometheus_port,
                                      plain=settings.prometheus_plain_listener,
                                      tls_context=self.prometheus_tls,
                                      tls_port=settings.prometheus_tls_port)
        if settings.management_enabled:
            from .http.server import ManagementServer
            extensions = []
            if settings.dashboard_enabled:
                from .dashboard.app import install
                extensions.append(install(self))
            self.management = ManagementServer(
                self, settings.management_host, settings.management_port,
                plain=settings.management_plain_listener, tls_context=self.management_tls,
                tls_port=settings.management_tls_port, extensions=extensions)
            await self.management.start()
            # The API's modules (aiohttp, yarl, multidict: some 16,000 objects)
            # are imported only now, after recovery froze what it loaded: freeze
            # them too, or every full collection of the cyclic GC rescans them.
            gc.freeze()
        self.collection_policy.install()
        where = []
        if self._server is not None:
            where.append(f'listening on {settings.host}:{self.port}')
        if self._tls_server is not None:
            where.append(f'{"" if where else "listening "}for TLS on {settings.host}:'
                         f'{self.tls_port}')
        log.info('Leveret %s %s', __version__, ', '.join(where))

    async def stop(self) -> None:
        """Stop accepting, close every connection with 320, release the store."""
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
        if self.management is not None:
            await self.management.stop()
        self.sessions.shutdown()
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while self.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self.sessions.abort()
        for server in (self._server, self._tls_server):
            if server is not None:
                await server.wait_closed()
        for vhost in self.vhosts.values():
            for queue in vhost.queues.values():
                queue.finish_slices()       # a big purge's removals reach the log
        if self.exporter is not None:
            await self.exporter.stop()
        self.history.stop()
        self.memory.stop_trimming()
        self.resident.stop()
        self.collection_policy.uninstall()
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
    loop.add_signal_handler(signal.SIGHUP, broker.reload_tls)
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
