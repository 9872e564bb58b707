"""The README's async example, run as it is written: it prints the result
and ends cleanly (no unclosed connection, no pending task, no warning)."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ..client_fixtures import leveret_worker

README = Path(__file__).resolve().parents[2] / 'README.md'


def python_blocks() -> list[str]:
    return re.findall(r'```python\n(.*?)```', README.read_text(), re.S)


def async_example() -> str:
    [block] = [b for b in python_blocks() if 'asyncio.run(' in b]
    return block


@pytest.fixture(scope='module')
def queue(broker, tmp_path_factory):
    name = f'readme-{uuid.uuid4().hex[:8]}'
    log = tmp_path_factory.mktemp('readme') / 'worker.log'
    worker = leveret_worker('lv_tasks', broker.url, name, log, pool='threads', concurrency=2)
    yield name
    worker.stop()


def test_the_async_example_prints_the_result_and_ends_cleanly(broker, queue, tmp_path):
    # The README's app and task, on the test broker and the worker's queue
    # (its task is named interop.add), then the example exactly as written.
    program = tmp_path / 'example.py'
    program.write_text(
        'from leveret.client import App\n'
        f'app = App({broker.url!r}, task_default_queue={queue!r})\n'
        "@app.task(name='interop.add')\n"
        'def add(x, y):\n'
        '    return x + y\n'
        + async_example())
    # Development mode: asyncio reports unclosed transports and pending tasks.
    done = subprocess.run([sys.executable, '-X', 'dev', '-W', 'error::ResourceWarning',
                           str(program)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '5\n'
    for sign in ('Task was destroyed', 'Unclosed', 'ResourceWarning', 'Exception ignored',
                 'Traceback', 'was never awaited'):
        assert sign not in done.stderr, done.stderr
