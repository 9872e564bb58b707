"""Settings from defaults, a TOML file, LEVERET_* variables and CLI flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from leveret.broker.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    settings = load_settings()
    assert (settings.host, settings.port, settings.heartbeat) == ('127.0.0.1', 5672, 60)
    assert settings.fsync is True


def test_precedence_file_then_environment_then_flags(tmp_path, monkeypatch):
    config = tmp_path / 'leveret.toml'
    config.write_text('port = 6000\nlog_level = "debug"\nheartbeat = 30\n')
    monkeypatch.setenv('LEVERET_PORT', '6001')
    monkeypatch.setenv('LEVERET_HEARTBEAT', '20')
    settings = load_settings(config, port=6002)
    assert settings.port == 6002          # flag beats environment
    assert settings.heartbeat == 20       # environment beats file
    assert settings.log_level == 'debug'  # file beats default


def test_config_file_from_the_environment(tmp_path, monkeypatch):
    config = tmp_path / 'x.toml'
    config.write_text('data_dir = "/tmp/somewhere"\n')
    monkeypatch.setenv('LEVERET_CONFIG', str(config))
    assert str(load_settings().data_dir) == '/tmp/somewhere'


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'leveret', *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def test_cli_rejects_a_bad_value_clearly():
    result = run_cli('broker', '--port', '99999')
    assert result.returncode == 2
    assert 'invalid settings' in result.stderr and 'port' in result.stderr


def test_cli_rejects_unknown_settings_in_the_file(tmp_path):
    config = tmp_path / 'bad.toml'
    config.write_text('prot = 1\n')
    result = run_cli('broker', '--config', str(config))
    assert result.returncode == 2 and 'prot' in result.stderr


def test_cli_reports_a_missing_config_file():
    result = run_cli('broker', '--config', '/nonexistent/leveret.toml')
    assert result.returncode == 2 and 'config file not found' in result.stderr


def test_cli_reports_a_port_in_use(broker):
    result = run_cli('broker', '--port', str(broker.port))
    assert result.returncode == 1
    assert 'cannot start the broker' in result.stderr


@pytest.mark.parametrize('flag', ['--help', '--version'])
def test_cli_help_and_version(flag):
    result = run_cli(flag)
    assert result.returncode == 0 and 'leveret' in result.stdout


def test_the_example_settings_file_names_every_setting_with_its_default(monkeypatch):
    from leveret.broker.config import ENV_PREFIX, Settings, defaults

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    example = ROOT / 'docs' / 'leveret.example.toml'
    text = example.read_text()
    for name, _variable, _default, _description in defaults():
        assert re.search(rf'^#? ?({name} = |\[\[{name}\]\])', text, re.M), \
            f'{name} is not in {example.name}'
    assert load_settings(example) == Settings()
