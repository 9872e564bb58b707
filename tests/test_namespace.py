"""One ``leveret`` namespace: a user's own ``client``, ``broker`` or
``protocol`` module never shadows Leveret's, and nothing is importable
under two names."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import leveret

from .processes import Background

VENV_BIN = Path(sys.executable).parent


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_import_leveret_gives_the_version(tmp_path):
    result = _python("""
        import leveret, leveret.broker, leveret.client, leveret.protocol
        print(leveret.__version__, leveret.broker.__version__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [leveret.__version__, leveret.__version__]


def test_nothing_installs_top_level_client_broker_or_protocol(tmp_path):
    result = _python("""
        import importlib.util
        print([name for name in ('client', 'broker', 'protocol')
               if importlib.util.find_spec(name) is not None])
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


def test_every_module_is_imported_under_one_name_only(tmp_path):
    # Import every module of the package, then look for a second copy.
    result = _python("""
        import importlib, pkgutil, sys
        import leveret
        for info in pkgutil.walk_packages(leveret.__path__, 'leveret.'):
            if '.bench.' in info.name or info.name.endswith('__main__'):
                continue
            importlib.import_module(info.name)
        print(sorted({name.split('.')[0] for name in sys.modules
                      if name.split('.')[0] in ('client', 'broker', 'protocol')}))
        print(len([n for n in sys.modules if n.startswith('leveret.')]))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    shadows, count = result.stdout.split('\n')[:2]
    assert shadows == '[]'
    assert int(count) > 60


def test_the_layers_are_sub_packages_of_leveret():
    names = {info.name for info in pkgutil.iter_modules(leveret.__path__)}
    assert {'broker', 'client', 'protocol', 'cli'} <= names


def test_a_project_with_its_own_client_broker_and_protocol_modules(tmp_path, amqp_url):
    project = tmp_path / 'proj'
    (project / 'protocol').mkdir(parents=True)
    # Modules a user project might well have, that must not shadow Leveret's.
    (project / 'client.py').write_text('raise ImportError("the project\'s own client.py")\n')
    (project / 'broker.py').write_text('raise ImportError("the project\'s own broker.py")\n')
    (project / 'protocol' / '__init__.py').write_text('NOT_LEVERET = True\n')
    (project / 'app.py').write_text(textwrap.dedent("""
        from leveret.client import App

        app = App()

        @app.task
        def add(x, y):
            return x + y
    """))
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(LEVERET_BROKER_URL=amqp_url, PYTHONUNBUFFERED='1')
    queue = f'ns-{tmp_path.name[-12:]}'
    worker = Background([str(VENV_BIN / 'leveret'), 'worker', '-A', 'app', '-Q', queue,
                         '-c', '1', '--pool', 'solo'],
                        tmp_path / 'worker.log', cwd=project, env=env)
    try:
        worker.wait_for_log(r'ready\.')
        sender = subprocess.run(
            [sys.executable, '-c', textwrap.dedent(f"""
                import app
                print(app.app.send_task('app.add', (2, 3), queue={queue!r}).get(timeout=30))
                app.app.close()
            """)], cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert sender.returncode == 0, sender.stderr
        assert sender.stdout.strip() == '5'
    finally:
        worker.stop()
