"""``leveret broker``: its options, and running the broker with them."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError


def run_broker(args: argparse.Namespace) -> int:
    from .config import load_settings
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
    except ValidationError as exc:
        print(f'leveret: invalid settings:\n{exc}', file=sys.stderr)
        return 2
    try:
        run(settings)
    except (OSError, DataDirLocked) as exc:
        print(f'leveret: cannot start the broker: {exc}', file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``broker`` to the ``leveret`` command's sub-commands."""
    b: argparse.ArgumentParser = sub.add_parser('broker', help='run the AMQP 0-9-1 broker')
    b.add_argument('--host', help='address to listen on (default 127.0.0.1)')
    b.add_argument('--port', type=int, help='port to listen on (default 5672)')
    b.add_argument('--data-dir', help='directory for durable data')
    b.add_argument('--log-level', choices=('debug', 'info', 'warning', 'error'))
    b.add_argument('--prometheus-port', type=int,
                   help='Prometheus metrics port (default 15692, 0: any free port)')
    b.add_argument('--management-host',
                   help='address the management API listens on (default 127.0.0.1)')
    b.add_argument('--management-port', type=int,
                   help='management API port (default 15672, 0: any free port)')
    b.add_argument('--config', help='TOML settings file (also LEVERET_CONFIG)')
    b.set_defaults(func=run_broker)
    return b
