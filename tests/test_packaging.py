"""The wheel carries what the broker reads at run time besides its modules:
the dashboard's templates and its vendored script and stylesheet."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / 'broker' / 'dashboard'


def test_the_wheel_has_the_dashboards_templates_and_static_files(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(tmp_path),
         str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    wheel, = tmp_path.glob('leveret-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [f'leveret/broker/dashboard/{path.relative_to(DASHBOARD).as_posix()}'
              for folder in ('templates', 'static')
              for path in sorted((DASHBOARD / folder).iterdir())]
    assert 'leveret/broker/dashboard/static/htmx.min.js' in wanted
    assert 'leveret/broker/dashboard/templates/base.html' in wanted
    missing = [name for name in wanted if name not in names]
    assert not missing
