"""Fixtures: a real Leveret broker in a subprocess on an ephemeral port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class BrokerProcess:
    """``leveret broker`` started with ``--port 0``; the port is read from its log."""

    def __init__(self, data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                 args: list[str] | None = None, file_size_limit: int | None = None) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.args = args or []
        #: RLIMIT_FSIZE for the broker: writes past it fail (a full disk, in effect).
        self.file_size_limit = file_size_limit
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        #: The amqps port (0 unless a certificate is configured).
        self.tls_port = 0
        #: The management API's port (0 until it logged it; stays 0 when disabled).
        self.management_port = 0
        #: The management API's HTTPS port (0 unless configured).
        self.management_tls_port = 0
        #: The Prometheus port (0 when the broker serves no metrics).
        self.metrics_port = 0
        #: The metrics' HTTPS port (0 unless configured).
        self.metrics_tls_port = 0

    @property
    def url(self) -> str:
        return f'amqp://guest:guest@127.0.0.1:{self.port}/'

    @property
    def metrics_url(self) -> str:
        return f'http://127.0.0.1:{self.metrics_port}/metrics'

    @property
    def api(self) -> str:
        """The management API's base URL (``.../api``)."""
        return f'http://127.0.0.1:{self.management_port}/api'

    def start(self, port: int = 0, timeout: float = 15.0,
              management_port: int | None = None) -> 'BrokerProcess':
        """Start the broker; the management API on ``management_port`` (by
        default a free port, or the one of the previous start)."""
        # Every broker of the suite serves its metrics on a free port of its own.
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'LEVERET_PROMETHEUS_PORT': '0',
               **self.extra_env}
        self._log = open(self.log_path, 'ab')
        start_offset = self._log.tell()
        if management_port is None:
            management_port = self.management_port
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'leveret', 'broker', '--port', str(port),
             '--management-port', str(management_port),
             '--data-dir', str(self.data_dir), '--log-level', 'info', *self.args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=self._limit_file_size if self.file_size_limit else None)
        deadline = time.monotonic() + timeout
        ready = re.compile(rb'Leveret \S+ listening ')
        while time.monotonic() < deadline:
            with open(self.log_path, 'rb') as f:
                f.seek(start_offset)
                text = f.read()
            if ready.search(text):
                self.metrics_port = self.metrics_tls_port = 0   # 0 unless this start serves them
                for attribute, pattern in (
                        ('port', rb'listening on [^\s]+:(\d+)'),
                        ('tls_port', rb'for TLS on [^\s]+:(\d+)'),
                        ('management_port', rb'management API at http://[^\s]+:(\d+)/'),
                        ('management_tls_port', rb'management API at https://[^\s]+:(\d+)/'),
                        ('metrics_port', rb'Prometheus metrics on http://[^\s]+:(\d+)/'),
                        ('metrics_tls_port', rb'Prometheus metrics on https://[^\s]+:(\d+)/')):
                    found = re.search(pattern, text)
                    if found:
                        setattr(self, attribute, int(found.group(1)))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f'broker exited with {self.proc.returncode}:\n{self.log()}')
            time.sleep(0.05)
        raise RuntimeError(f'broker did not start:\n{self.log()}')

    def _limit_file_size(self) -> None:
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of a signal
        assert self.file_size_limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, self.file_size_limit))

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope='session')
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker shared by the whole session (tests use unique names)."""
    base = tmp_path_factory.mktemp('broker')
    proc = BrokerProcess(base / 'data', base / 'broker.log').start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.log()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker of the test's own (for restarts, signals, crash tests)."""
    proc = BrokerProcess(tmp_path / 'data', tmp_path / 'broker.log')
    yield proc
    proc.kill()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[object]:
    started: list[BrokerProcess] = []

    def make(**kwargs: object) -> BrokerProcess:
        proc = BrokerProcess(tmp_path / 'data', tmp_path / f'broker{len(started)}.log',
                             **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def amqp_url(broker: BrokerProcess) -> str:
    return broker.url


@pytest.fixture(scope='module')
def app(broker: BrokerProcess) -> Iterator[object]:
    """A Leveret client on the shared broker (a test module may define its own)."""
    from leveret.client import App
    app = App(broker.url)
    yield app
    app.close()


@pytest.fixture
def unique() -> str:
    """A name unique to this test run, for queues and exchanges."""
    import uuid
    return f't-{uuid.uuid4().hex[:10]}'


def free_port() -> int:
    """A TCP port nobody listens on right now (for servers that need one named)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """Debian's ``redis-server`` on a free port, nothing saved to disk."""

    def __init__(self, directory: Path, port: int | None = None,
                 password: str | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'redis://127.0.0.1:{self.port}'

    def start(self, timeout: float = 15.0) -> 'RedisProcess':
        import redis
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--dir', str(self.directory),
             *(['--requirepass', self.password] if self.password else [])],
            stdout=open(self.directory / 'redis.log', 'ab'), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, password=self.password,
                               socket_connect_timeout=1).ping():
                    return self
            except redis.exceptions.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError('redis-server exited: '
                                       + (self.directory / 'redis.log').read_text()) from None
                time.sleep(0.05)
        raise RuntimeError('redis-server did not start')

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope='session')
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One Redis for the session (tests use database numbers or keys of their own)."""
    server = RedisProcess(tmp_path_factory.mktemp('redis')).start()
    yield server
    server.stop()
