"""``leveret worker``: finding the app as ``celery -A`` does, the start-up
banner, one log line per task."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from leveret.client import App
from leveret.client.worker.loader import AppNotFound, find_app

from ..client_fixtures import APPS, ROOT, leveret_worker


@pytest.fixture
def importable(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(APPS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith('cli_')]:
        del sys.modules[name]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize('spec', ['lv_tasks', 'lv_tasks:app', 'lv_tasks.app'])
def test_a_leveret_app_is_found_like_celery_finds_apps(importable, spec):
    import lv_tasks
    assert find_app(spec) is lv_tasks.app


def test_a_celery_app_is_found_too(importable):
    import cel_tasks
    assert find_app('cel_tasks') is cel_tasks.app


def test_a_package_with_a_celery_module_and_an_app_under_any_name(importable):
    _write(importable / 'cli_proj' / '__init__.py', '')
    _write(importable / 'cli_proj' / 'celery.py', """
        from leveret.client import App
        app = App()
    """)
    _write(importable / 'cli_other.py', """
        from leveret.client import App
        workers_app = App()
    """)
    assert isinstance(find_app('cli_proj'), App)
    assert find_app('cli_other') is sys.modules['cli_other'].workers_app


def test_no_app_is_a_clear_error(importable):
    _write(importable / 'cli_empty.py', 'x = 1\n')
    with pytest.raises(AppNotFound, match='no Leveret App and no Celery app'):
        find_app('cli_empty')
    with pytest.raises(AppNotFound, match='cannot import'):
        find_app('cli_missing_module')


def test_the_command_exits_2_without_an_app(tmp_path):
    out = subprocess.run([sys.executable, '-m', 'leveret', 'worker', '-A', 'cli_missing_module'],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and 'cannot import' in out.stderr


def test_the_banner_and_the_log_line_of_each_task(broker, unique, tmp_path):
    worker = leveret_worker('lv_tasks', broker.url, unique, tmp_path / 'w.log',
                            concurrency=2, pool='threads')
    try:
        banner = worker.log()
        assert f'{worker.nodename} v' in banner
        assert re.search(r'broker:\s+amqp://guest:\*\*@127\.0\.0\.1:\d+/', banner)
        assert 'guest:guest' not in banner
        assert re.search(r'concurrency:\s+2 \(threads pool\)', banner)
        assert re.search(rf'\[queues\]\n\s+\.> {unique}\s+exchange={unique}\(direct\) '
                         rf'key={unique}\n', banner)
        assert '  . interop.add\n' in banner and '  . interop.asleep\n' in banner
        app = App(broker.url)
        try:
            result = app.send_task('interop.add', (1, 2), queue=unique)
            assert result.get(60) == 3
        finally:
            app.close()
        worker.wait_for_log(
            rf'Task interop\.add\[{result.id}\] succeeded in \d+\.\d+s: 3')
    finally:
        worker.stop()
