"""The ``leveret`` command: ``leveret broker`` and ``leveret worker``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from . import __version__


def _broker(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .server import run
    from .store.files import DataDirLocked

    try:
        settings = load_settings(args.config, host=args.host, port=args.port,
                                 data_dir=args.data_dir, log_level=args.log_level)
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


def _worker(args: argparse.Namespace) -> int:
    # Imported here: the broker never loads the client package.
    from client.worker.cli import main as worker_main
    return worker_main(args.args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='leveret', description='Leveret message broker')
    parser.add_argument('--version', action='version', version=f'leveret {__version__}')
    sub = parser.add_subparsers(dest='command', required=True)

    b = sub.add_parser('broker', help='run the AMQP 0-9-1 broker')
    b.add_argument('--host', help='address to listen on (default 127.0.0.1)')
    b.add_argument('--port', type=int, help='port to listen on (default 5672)')
    b.add_argument('--data-dir', help='directory for durable data')
    b.add_argument('--log-level', choices=('debug', 'info', 'warning', 'error'))
    b.add_argument('--config', help='TOML settings file (also LEVERET_CONFIG)')
    b.set_defaults(func=_broker)

    # The worker parses its own options (client/worker/cli.py): pass them all on.
    w = sub.add_parser('worker', help='run the tasks of a Leveret or Celery app',
                       add_help=False, prefix_chars='\0')
    w.add_argument('args', nargs='*')
    w.set_defaults(func=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == '__main__':
    sys.exit(main())
