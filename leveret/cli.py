"""The ``leveret`` command: one entry point for every sub-command.

Each sub-command's options and behaviour live with the layer it runs
(``leveret broker`` in :mod:`leveret.broker.cli`, ``leveret ctl`` in
:mod:`leveret.broker.ctl.cli`, ``leveret worker`` in
:mod:`leveret.client.worker.cli`); this module only dispatches, so the
broker never imports the client and the other way round.
"""

from __future__ import annotations

import argparse
import sys

from leveret import __version__


def _worker(args: argparse.Namespace) -> int:
    from leveret.client.worker.cli import main as worker_main
    return worker_main(args.args)


def _ctl(args: argparse.Namespace) -> int:
    from leveret.broker.ctl.cli import main as ctl_main
    return ctl_main(args.args)


def build_parser() -> argparse.ArgumentParser:
    from leveret.broker import cli as broker_cli

    parser = argparse.ArgumentParser(prog='leveret', description='Leveret message broker')
    parser.add_argument('--version', action='version', version=f'leveret {__version__}')
    sub = parser.add_subparsers(dest='command', required=True)
    broker_cli.add_parser(sub)
    # The worker parses its own options (client/worker/cli.py): pass them all on.
    w = sub.add_parser('worker', help='run the tasks of a Leveret or Celery app',
                       add_help=False, prefix_chars='\0')
    w.add_argument('args', nargs='*')
    w.set_defaults(func=_worker)
    # So does ctl (broker/ctl/cli.py), which speaks HTTP to a running broker.
    c = sub.add_parser('ctl', help="operate a running broker over its management API",
                       add_help=False, prefix_chars='\0')
    c.add_argument('args', nargs='*')
    c.set_defaults(func=_ctl)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == '__main__':
    sys.exit(main())
