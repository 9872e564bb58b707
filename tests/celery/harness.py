"""Running a Celery project against a broker: app module, worker and CLI subprocesses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ..client_fixtures import close_celery_client
from ..conftest import BrokerProcess
from ..processes import Background, wait_until

APP_MODULE = Path(__file__).with_name('app_module.py')



def celery_url(broker: BrokerProcess) -> str:
    # '//' names the vhost '/', as in the README's Celery example.
    return f'amqp://guest:guest@127.0.0.1:{broker.port}//'


class CeleryWorker(Background):
    def __init__(self, args: list[str], log_path: Path, *, cwd: Path, env: dict[str, str],
                 nodename: str) -> None:
        super().__init__(args, log_path, cwd=cwd, env=env)
        self.nodename = nodename

    def wait_ready(self, timeout: float = 60.0) -> CeleryWorker:
        # Logged once the task consumer is consuming (after mingle, when enabled).
        self.wait_for_log(rf'{re.escape(self.nodename)} ready\.', timeout)
        return self


class CeleryProject:
    """``app_module.py`` written as ``<module>.py`` in ``directory``, with its settings."""

    def __init__(self, directory: Path, broker_url: str, conf: dict[str, Any],
                 queues: list[dict[str, Any]] | None = None) -> None:
        self.directory = directory
        self.module_name = f'leveret_app_{uuid.uuid4().hex[:8]}'
        self.broker_url = broker_url
        self.records_path = directory / 'records.jsonl'
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(APP_MODULE, directory / f'{self.module_name}.py')
        (directory / f'{self.module_name}.json').write_text(json.dumps({
            'broker_url': broker_url, 'conf': conf, 'records': str(self.records_path),
            'queues': queues or []}))
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
        # Flower's API answers without an auth setting only with this set.
        env = dict(os.environ, PYTHONUNBUFFERED='1', FLOWER_UNAUTHENTICATED_API='true')
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [str(self.directory), os.environ.get('PYTHONPATH')]))
        return env

    def celery_args(self, *args: str) -> list[str]:
        return [sys.executable, '-m', 'celery', '-A', self.module_name, *args]

    def spawn(self, *args: str, name: str) -> Background:
        self._serial += 1
        process = Background(self.celery_args(*args),
                             self.directory / f'{self._serial:02d}-{name}.log',
                             cwd=self.directory, env=self.env())
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
            log_path, cwd=self.directory, env=self.env(), nodename=nodename)
        self._processes.append(worker)
        if ready:
            try:
                worker.wait_ready()
            except BaseException:
                worker.kill()
                raise
        return worker

    def start_leveret_worker(self, *args: str, name: str = 'worker', ready: bool = True,
                             mingle: bool = False) -> CeleryWorker:
        """The bundled worker, ``leveret worker -A <module>``, node ``<name>@leveret``
        (without mingle unless asked: it waits a second for the other workers)."""
        nodename = f'{name}@leveret'
        self._serial += 1
        worker = CeleryWorker(
            [sys.executable, '-m', 'leveret', 'worker', '-A', self.module_name, '-n', nodename,
             '-l', 'INFO', *([] if mingle else ['--without-mingle']), *args],
            self.directory / f'{self._serial:02d}-{name}.log', cwd=self.directory,
            env=self.env(), nodename=nodename)
        self._processes.append(worker)
        if ready:
            try:
                worker.wait_ready()
            except BaseException:
                worker.kill()
                raise
        return worker

    def leveret(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``leveret worker -A <module> ...`` to completion (for its refusals)."""
        return subprocess.run([sys.executable, '-m', 'leveret', 'worker', '-A', self.module_name,
                               *args], cwd=self.directory, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run a ``celery`` command to completion (killed if it overruns ``timeout``)."""
        return subprocess.run(self.celery_args(*args), cwd=self.directory, env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        for process in self._processes:
            process.kill()
        if self._module is not None:
            close_celery_client(self._module.app)
            sys.modules.pop(self.module_name, None)
            self._module = None


def queue_counts(broker_url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``, from a passive queue.declare."""
    from kombu import Connection

    with Connection(broker_url) as connection:
        ok = connection.default_channel.queue_declare(queue, passive=True)
        return ok.message_count, ok.consumer_count
