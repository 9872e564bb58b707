"""Running a Celery project against a broker: app module, worker and CLI subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from ..conftest import BrokerProcess

APP_MODULE = Path(__file__).with_name('app_module.py')

T = TypeVar('T')


def wait_until(check: Callable[[], T], timeout: float, interval: float = 0.1,
               message: str | Callable[[], str] = 'condition not met') -> T:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f'after {timeout} s: {text}')
        time.sleep(interval)


def celery_url(broker: BrokerProcess) -> str:
    # '//' names the vhost '/', as in the README's Celery example.
    return f'amqp://guest:guest@127.0.0.1:{broker.port}//'


class Background:
    """A subprocess in a session of its own, with its output in a log file."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        """Output of this run only (a restarted worker may share its log file)."""
        with open(self.log_path, 'rb') as f:
            f.seek(self._log_start)
            return f.read().decode(errors='replace')

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        compiled = re.compile(pattern)

        def found() -> re.Match[str] | None:
            match = compiled.search(self.log())
            if match is None and not self.alive():
                command = ' '.join(self.args[5:7])   # after: python -m celery -A <module>
                raise AssertionError(f'{command} exited with {self.proc.returncode} '
                                     f'before logging {pattern!r}:\n{self.log()[-4000:]}')
            return match

        return wait_until(found, timeout, message=lambda: f'no {pattern!r} in log:\n'
                                                          f'{self.log()[-4000:]}')

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process and every process of its session."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the whole group (pool children too) and reap the main process."""
        self.signal_group(signal.SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Ask the main process to stop; kill the group if it does not."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.poll()
        self.kill()
        return code


class CeleryWorker(Background):
    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 nodename: str) -> None:
        super().__init__(args, cwd, env, log_path)
        self.nodename = nodename

    def wait_ready(self, timeout: float = 60.0) -> CeleryWorker:
        # Logged once the task consumer is consuming (after mingle, when enabled).
        self.wait_for_log(rf'{re.escape(self.nodename)} ready\.', timeout)
        return self


def close_client_connections(app: Any) -> None:
    """Close the client app's connections with connection.close.

    ``Celery.close()`` only forgets its pools; a connection left open would make
    the broker's shutdown wait for a close-ok that nobody reads.
    """
    from kombu import pools
    from kombu.utils.collections import eqhash

    closers: list[Callable[[], object]] = []
    consumer_connection = app.backend.result_consumer._connection
    if consumer_connection is not None:
        closers.append(consumer_connection.close)
    # kombu keeps producer and connection pools per broker URL for the whole
    # process: close this URL's pools and forget them, so that a later app on
    # the same URL starts afresh.
    connection = app.connection_for_write()
    for group in (pools.producers, pools.connections):
        if eqhash(connection) in group:
            closers.append(group.pop(eqhash(connection)).force_close_all)
    if app._pool is not None:
        closers.append(app._pool.force_close_all)
    for close in closers:
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort: the broker may be gone already
            pass
    app.close()


class CeleryProject:
    """``app_module.py`` written as ``<module>.py`` in ``directory``, with its settings."""

    def __init__(self, directory: Path, broker_url: str, conf: dict[str, Any]) -> None:
        self.directory = directory
        self.module_name = f'leveret_app_{uuid.uuid4().hex[:8]}'
        self.broker_url = broker_url
        self.records_path = directory / 'records.jsonl'
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(APP_MODULE, directory / f'{self.module_name}.py')
        (directory / f'{self.module_name}.json').write_text(json.dumps({
            'broker_url': broker_url, 'conf': conf, 'records': str(self.records_path)}))
        self._module: ModuleType | None = None
        self._processes: list[Background] = []
        self._serial = 0

    # --- the client side, in the test process ---
    @property
    def tasks(self) -> ModuleType:
        """The app module imported in the test process (``.app``, ``.add``, ...)."""
        if self._module is None:
            spec = importlib.util.spec_from_file_location(
                self.module_name, self.directory / f'{self.module_name}.py')
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[self.module_name] = module
            spec.loader.exec_module(module)
            self._module = module
        return self._module

    @property
    def app(self) -> Any:
        return self.tasks.app

    def task_name(self, function: str) -> str:
        return f'{self.module_name}.{function}'

    # --- records the tasks keep ---
    def records(self) -> list[dict[str, Any]]:
        if not self.records_path.exists():
            return []
        return [json.loads(line) for line in self.records_path.read_text().splitlines()]

    def wait_for_records(self, check: Callable[[list[dict[str, Any]]], bool],
                         timeout: float = 30.0) -> list[dict[str, Any]]:
        def matched() -> list[dict[str, Any]] | None:
            records = self.records()
            return records if check(records) else None

        return wait_until(matched, timeout, message=lambda: f'records: {self.records()}')

    # --- subprocesses ---
    def env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [str(self.directory), os.environ.get('PYTHONPATH')]))
        return env

    def celery_args(self, *args: str) -> list[str]:
        return [sys.executable, '-m', 'celery', '-A', self.module_name, *args]

    def spawn(self, *args: str, name: str) -> Background:
        self._serial += 1
        process = Background(self.celery_args(*args), self.directory, self.env(),
                             self.directory / f'{self._serial:02d}-{name}.log')
        self._processes.append(process)
        return process

    def start_worker(self, *args: str, name: str = 'worker', ready: bool = True,
                     log_name: str | None = None) -> CeleryWorker:
        """``celery worker`` with node name ``<name>@leveret`` and extra ``args``."""
        nodename = f'{name}@leveret'
        self._serial += 1
        log_path = self.directory / (log_name or f'{self._serial:02d}-{name}.log')
        worker = CeleryWorker(
            self.celery_args('worker', '-n', nodename, '-l', 'INFO', *args),
            self.directory, self.env(), log_path, nodename)
        self._processes.append(worker)
        if ready:
            try:
                worker.wait_ready()
            except BaseException:
                worker.kill()
                raise
        return worker

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a ``celery`` command to completion (killed if it overruns ``timeout``)."""
        return subprocess.run(self.celery_args(*args), cwd=self.directory, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        for process in self._processes:
            process.kill()
        if self._module is not None:
            close_client_connections(self._module.app)
            sys.modules.pop(self.module_name, None)
            self._module = None


def queue_counts(broker_url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``, from a passive queue.declare."""
    from kombu import Connection

    with Connection(broker_url) as connection:
        ok = connection.default_channel.queue_declare(queue, passive=True)
        return ok.message_count, ok.consumer_count
