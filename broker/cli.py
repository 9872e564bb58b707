"""``leveret broker``: its options, and running the broker with them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def run_broker(args: argparse.Namespace) -> int:
    from .config import SettingsProblem, load_settings
    from .server import run
    from .store.files import DataDirLocked

    try:
        settings = load_settings(args.config, host=args.host, port=args.port,
                                 data_dir=args.data_dir, log_level=args.log_level,
                                 prometheus_port=args.prometheus_port,
                                 management_host=args.management_host,
                                 management_port=args.management_port)
    except FileNotFoundError as exc:
        print(f'leveret: {exc}', file=sys.stderr)
        return 2
    except SettingsProblem as exc:
        for line in str(exc).splitlines():
            print(f'leveret: invalid settings: {line}', file=sys.stderr)
        return 2
    try:
        run(settings, config_file=args.config or os.environ.get('LEVERET_CONFIG'))
    except (OSError, DataDirLocked) as exc:
        print(f'leveret: cannot start the broker: {exc}', file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``broker`` to the ``leveret`` command's sub-commands."""
    from .config import FLAGS, defaults

    settings = defaults()
    default = {name: value for name, _, value, _ in settings}
    b: argparse.ArgumentParser = sub.add_parser(
        'broker', help='run the AMQP 0-9-1 broker',
        description='Run the AMQP 0-9-1 broker.  Every setting comes from, in increasing '
                    'priority: its default, the TOML file (--config or LEVERET_CONFIG), '
                    'its LEVERET_* environment variable, its flag.',
        epilog=_settings_table(settings, FLAGS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument('--host', help=f'address to listen on (default {default["host"]})')
    b.add_argument('--port', type=int, help=f'port to listen on (default {default["port"]})')
    b.add_argument('--data-dir', help=f'directory for durable data (default {default["data_dir"]})')
    b.add_argument('--log-level', choices=('debug', 'info', 'warning', 'error'),
                   help=f'(default {default["log_level"]})')
    b.add_argument('--prometheus-port', type=int,
                   help=f'Prometheus metrics port (default {default["prometheus_port"]}, '
                        f'0: any free port)')
    b.add_argument('--management-host',
                   help=f'address the management API listens on '
                        f'(default {default["management_host"]})')
    b.add_argument('--management-port', type=int,
                   help=f'management API port (default {default["management_port"]}, '
                        f'0: any free port)')
    b.add_argument('--config', help='TOML settings file (also LEVERET_CONFIG; default none)')
    b.set_defaults(func=run_broker)
    return b


def _settings_table(settings: list[tuple[str, str, Any, str]], flags: dict[str, str]) -> str:
    lines = ['settings (name in the TOML file, environment variable, default):']
    for name, variable, value, description in settings:
        if isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, (list, str)) or value is None:
            shown = json.dumps(value if not isinstance(value, str) else value)
        else:
            shown = str(value)
        flag = f', {flags[name]}' if name in flags else ''
        lines.append(f'  {name} ({variable}{flag}) = {shown}')
        if description:
            lines.append(f"      {description}")
    return '\n'.join(lines)
