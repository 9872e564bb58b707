"""What the person running the broker reads when a setting is wrong: one line
naming the file (with line and column), the variable or the flag, and what
was expected; never a traceback or an internal class name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leveret.broker.config import defaults

ROOT = Path(__file__).resolve().parents[2]


def run_broker(*args: str, env: dict[str, str] | None = None,
               tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **(env or {}))
    data = ['--data-dir', str(tmp_path / 'data')] if tmp_path is not None else []
    return subprocess.run([sys.executable, '-m', 'leveret', 'broker', '--port', '0', *data,
                           *args], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=30)


def assert_one_clear_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert 'Traceback' not in result.stderr and '_FromFile' not in result.stderr
    return lines[0]


def test_a_malformed_toml_file_is_one_line_with_its_line_and_column(tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text('port = 5673\nheartbeat = \n')
    line = assert_one_clear_line(run_broker('--config', str(config)), f'{config}:2:13')
    assert 'Invalid value' in line


def test_a_bad_value_in_the_file_names_the_file_and_the_setting(tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text('heartbeat = "often"\n')
    assert_one_clear_line(run_broker('--config', str(config)), str(config), 'heartbeat',
                          'valid integer', "'often'")


def test_a_malformed_variable_names_it_and_what_was_expected():
    assert_one_clear_line(run_broker(env={'LEVERET_HEARTBEAT': 'often'}),
                          'LEVERET_HEARTBEAT', 'valid integer', "'often'")


def test_a_variable_that_is_not_json_names_it_and_shows_an_example():
    assert_one_clear_line(run_broker(env={'LEVERET_VHOSTS': 'reports,billing'}),
                          'LEVERET_VHOSTS', 'expected JSON, such as ["reports"')


def test_a_bad_flag_names_the_flag():
    result = subprocess.run([sys.executable, '-m', 'leveret', 'broker', '--port', '70000'],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert_one_clear_line(result, '--port', 'less than or equal to 65535')


def test_a_user_without_a_password_names_the_entry(tmp_path):
    config = tmp_path / 'leveret.toml'
    config.write_text('[[users]]\nname = "app"\n')
    assert_one_clear_line(run_broker('--config', str(config)), str(config),
                          'users[0]', 'needs a password or a password_hash')


@pytest.mark.parametrize('host', ['no-such-host.invalid', '192.0.2.1'])
def test_a_host_it_cannot_listen_on_is_named(tmp_path, host):
    result = run_broker('--host', host, tmp_path=tmp_path)
    assert result.returncode == 1
    assert f'cannot listen on {host}:0' in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr


def test_help_shows_every_setting_and_its_default():
    result = subprocess.run([sys.executable, '-m', 'leveret', 'broker', '--help'], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for name, variable, _default, _description in defaults():
        assert f'  {name} ({variable}' in result.stdout, name
    assert 'heartbeat (LEVERET_HEARTBEAT) = 60' in result.stdout
    assert 'fsync (LEVERET_FSYNC) = true' in result.stdout
    assert '--port PORT           port to listen on (default 5672)' in result.stdout
