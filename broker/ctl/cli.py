"""``leveret ctl``: what ``rabbitmqctl`` and ``rabbitmqadmin`` are used for,
over the management API.

Exit status: 0 done, 1 the broker refused (its reason is printed), 2 usage,
69 the broker is unreachable.  Options come from the command line, else
``LEVERET_CTL_URL``, ``LEVERET_CTL_USER``, ``LEVERET_CTL_PASSWORD``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .client import Client, Refused, Unreachable, segment
from .output import as_json, table

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 69

#: ``list`` types: (path, scoped by vhost, default columns).
LISTS: dict[str, tuple[str, bool, list[str]]] = {
    'queues': ('/queues', True, ['vhost', 'name', 'type', 'durable', 'messages_ready',
                                 'messages_unacknowledged', 'consumers']),
    'exchanges': ('/exchanges', True, ['vhost', 'name', 'type', 'durable', 'auto_delete',
                                       'internal']),
    'bindings': ('/bindings', True, ['vhost', 'source', 'destination_type', 'destination',
                                     'routing_key', 'properties_key']),
    'connections': ('/connections', False, ['name', 'user', 'vhost', 'state', 'channels',
                                            'user_provided_name']),
    'channels': ('/channels', False, ['name', 'user', 'vhost', 'consumer_count',
                                      'messages_unacknowledged', 'prefetch_count', 'confirm',
                                      'transactional']),
    'consumers': ('/consumers', True, ['queue.vhost', 'queue.name', 'consumer_tag',
                                       'channel_details.name', 'ack_required',
                                       'prefetch_count', 'exclusive', 'active']),
    'users': ('/users', False, ['name', 'tags']),
    'vhosts': ('/vhosts', False, ['name', 'description', 'messages']),
    'permissions': ('/permissions', False, ['vhost', 'user', 'configure', 'write', 'read']),
    'topic_permissions': ('/topic-permissions', False, ['vhost', 'user', 'exchange', 'write',
                                                        'read']),
    'vhost_limits': ('/vhost-limits', True, ['vhost', 'value']),
    'user_limits': ('/user-limits', False, ['user', 'value']),
}


class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = Client(args.url, args.user, args.password, cafile=args.cacert,
                             certfile=args.cert, keyfile=args.key)
        self.json = args.format == 'json'

    def say(self, text: str, data: Any = None) -> None:
        print(as_json(data if data is not None else {'result': text}) if self.json else text)

    @property
    def vhost(self) -> str:
        return str(self.args.vhost)

    def vpath(self, kind: str, name: str) -> str:
        return f'/{kind}/{segment(self.vhost)}/{segment(name)}'

    # --- reads ------------------------------------------------------------------
    def status(self) -> None:
        overview = self.client.get('/overview')
        data = {
            'product': f"{overview['product_name']} {overview['product_version']}",
            'node': overview['node'],
            'listeners': ', '.join(f"{item['protocol']} {item['ip_address']}:{item['port']}"
                                   for item in overview['listeners']),
            **{f'{k}': v for k, v in overview['object_totals'].items()},
            'messages': overview['queue_totals']['messages'],
            'messages_ready': overview['queue_totals']['messages_ready'],
            'messages_unacknowledged': overview['queue_totals']['messages_unacknowledged'],
        }
        try:
            node = self.client.get('/nodes')[0]
        except Refused:
            node = None
        if node is not None:
            data.update({'uptime_s': node['uptime'] // 1000, 'memory_used': node['mem_used'],
                         'memory_limit': node['mem_limit'], 'memory_alarm': node['mem_alarm'],
                         'file_descriptors': f"{node['fd_used']}/{node['fd_total']}"})
        if self.json:
            print(as_json(data))
            return
        width = max(len(k) for k in data)
        for key, value in data.items():
            print(f'{key.ljust(width)}  {value}')

    def list(self) -> None:
        kind = self.args.kind
        path, scoped, defaults = LISTS[kind]
        columns = self.args.columns or defaults
        if scoped and self.args.vhost_given:
            path += f'/{segment(self.vhost)}'
        rows = self.client.get(path)
        if kind in ('permissions', 'topic_permissions') and self.args.vhost_given:
            rows = [r for r in rows if r['vhost'] == self.vhost]
        if self.json:
            print(as_json(rows))
        elif rows:
            print(table(rows, columns))
        else:
            print(f'no {kind}')

    def get(self) -> None:
        body = {'count': self.args.count, 'encoding': 'auto', 'truncate': 50000,
                'ackmode': 'ack_requeue_true' if self.args.requeue else 'ack_requeue_false'}
        messages = self.client.request('POST', self.vpath('queues', self.args.queue) + '/get',
                                       body)
        if self.json:
            print(as_json(messages))
        elif messages:
            print(table(messages, ['routing_key', 'exchange', 'redelivered', 'message_count',
                                   'payload_bytes', 'payload_encoding', 'payload']))
        else:
            print('queue is empty')

    # --- changes ------------------------------------------------------------------
    def declare(self) -> None:
        args = self.args
        arguments = _json_arg(args.arguments, '--arguments') if args.arguments else {}
        if args.what == 'queue':
            body: dict[str, Any] = {'durable': args.durable, 'auto_delete': args.auto_delete,
                                    'arguments': arguments}
            if args.type:
                body['arguments'] = {**arguments, 'x-queue-type': args.type}
            self.client.request('PUT', self.vpath('queues', args.name), body)
        elif args.what == 'exchange':
            self.client.request('PUT', self.vpath('exchanges', args.name), {
                'type': args.type or 'direct', 'durable': args.durable,
                'auto_delete': args.auto_delete, 'internal': args.internal,
                'arguments': arguments})
        else:
            kind = 'q' if args.destination_type == 'queue' else 'e'
            self.client.request(
                'POST', f'/bindings/{segment(self.vhost)}/e/{segment(args.name)}/{kind}/'
                        f'{segment(args.destination)}',
                {'routing_key': args.routing_key, 'arguments': arguments})
        self.say(f'{args.what} declared')

    def delete(self) -> None:
        args = self.args
        conditions = [f'{flag}=true' for flag, on in (('if-empty', args.if_empty),
                                                       ('if-unused', args.if_unused)) if on]
        query = ('?' + '&'.join(conditions)) if conditions else ''
        if args.what in ('queue', 'exchange'):
            self.client.request('DELETE', self.vpath(f'{args.what}s', args.name) + query)
        elif args.what == 'user':
            self.client.request('DELETE', f'/users/{segment(args.name)}')
        else:
            self.client.request('DELETE', f'/vhosts/{segment(args.name)}')
        self.say(f'{args.what} deleted')

    def purge(self) -> None:
        self.client.request('DELETE', self.vpath('queues', self.args.name) + '/contents')
        self.say('queue purged')

    def close(self) -> None:
        headers = {'X-Reason': self.args.reason} if self.args.reason else {}
        self.client.request('DELETE', f'/connections/{segment(self.args.name)}',
                            headers=headers)
        self.say('connection closed')

    def add(self) -> None:
        args = self.args
        if args.what == 'user':
            if args.user_password is None:
                raise UsageError('add user NAME PASSWORD')
            self.client.request('PUT', f'/users/{segment(args.name)}', {
                'password': args.user_password, 'tags': args.tags or ''})
        else:
            self.client.request('PUT', f'/vhosts/{segment(args.name)}', {
                'description': args.description or ''})
        self.say(f'{args.what} added')

    def change_password(self) -> None:
        user = self.client.get(f'/users/{segment(self.args.name)}')
        self.client.request('PUT', f'/users/{segment(self.args.name)}', {
            'password': self.args.new_password, 'tags': user['tags']})
        self.say('password changed')

    def set_tags(self) -> None:
        user = self.client.get(f'/users/{segment(self.args.name)}')
        self.client.request('PUT', f'/users/{segment(self.args.name)}', {
            'password_hash': user['password_hash'],
            'hashing_algorithm': user['hashing_algorithm'], 'tags': self.args.tags})
        self.say('tags set')

    def set_permissions(self) -> None:
        args = self.args
        self.client.request('PUT', f'/permissions/{segment(self.vhost)}/{segment(args.user)}',
                            {'configure': args.configure, 'write': args.write,
                             'read': args.read})
        self.say('permissions set')

    def set_topic_permissions(self) -> None:
        args = self.args
        self.client.request('PUT', f'/topic-permissions/{segment(self.vhost)}/'
                                   f'{segment(args.user)}',
                            {'exchange': args.exchange, 'write': args.write,
                             'read': args.read})
        self.say('topic permissions set')

    def set_limits(self, path: str, text: str) -> None:
        """``{"max-connections": 10, ...}``, as rabbitmqctl set_vhost_limits takes it."""
        limits = _json_arg(text, 'the limits')
        if not isinstance(limits, dict) or not limits:
            raise UsageError('the limits are a JSON object, e.g. \'{"max-connections": 10}\'')
        for name, value in limits.items():
            self.client.request('PUT', f'{path}/{segment(name)}', {'value': value})
        self.say('limits set')

    def clear(self) -> None:
        args = self.args
        what, name, rest = args.what, args.name, args.values
        if what == 'permissions':
            self.client.request('DELETE', f'/permissions/{segment(self.vhost)}/{segment(name)}')
        elif what == 'topic_permissions':
            self.client.request('DELETE', f'/topic-permissions/{segment(self.vhost)}/'
                                          f'{segment(name)}')
        else:
            base = (f'/vhost-limits/{segment(self.vhost)}' if what == 'vhost_limits'
                    else f'/user-limits/{segment(name)}')
            names = ([name] if what == 'vhost_limits' and name else rest) or \
                [n for item in self.client.get(base) for n in item['value']]
            for limit in names:
                self.client.request('DELETE', f'{base}/{segment(limit)}')
        self.say(f'{what} cleared')

    def export(self) -> None:
        path = '/definitions' + (f'/{segment(self.vhost)}' if self.args.vhost_given else '')
        data = self.client.get(path)
        try:
            Path(self.args.file).write_text(json.dumps(data, indent=2) + '\n')
        except OSError as exc:
            raise UsageError(f'cannot write {self.args.file}: {exc.strerror}') from None
        self.say(f'definitions exported to {self.args.file}')

    def import_(self) -> None:
        try:
            raw = Path(self.args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f'cannot read {self.args.file}: {exc.strerror}') from None
        path = '/definitions' + (f'/{segment(self.vhost)}' if self.args.vhost_given else '')
        answer = self.client.request('POST', path, raw=raw)
        not_applied = (answer or {}).get('not_applied', [])
        if self.json:
            print(as_json({'result': 'definitions imported', 'not_applied': not_applied}))
            return
        print(f'definitions imported from {self.args.file}')
        for line in not_applied:
            print(f'  not applied: {line}')

    def publish(self) -> None:
        args = self.args
        payload = args.payload
        if payload is None:
            payload = sys.stdin.read()
        properties = _json_arg(args.properties, '--properties') if args.properties else {}
        answer = self.client.request(
            'POST', self.vpath('exchanges', args.exchange or 'amq.default') + '/publish',
            {'routing_key': args.routing_key, 'payload': payload,
             'payload_encoding': 'string', 'properties': properties})
        routed = bool(answer and answer.get('routed'))
        self.say('message published' if routed else 'message published but not routed',
                 {'routed': routed})


class UsageError(Exception):
    pass


def _json_arg(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise UsageError(f'{option} must be JSON: {text}') from None


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog='leveret ctl', description='Operate a running broker over its management API.')
    parser.add_argument('--url', default=env('LEVERET_CTL_URL', 'http://127.0.0.1:15672'),
                        help='management API (LEVERET_CTL_URL; default http://127.0.0.1:15672)')
    parser.add_argument('--user', default=env('LEVERET_CTL_USER', 'guest'),
                        help='user (LEVERET_CTL_USER; default guest)')
    parser.add_argument('--password', default=env('LEVERET_CTL_PASSWORD', 'guest'),
                        help='password (LEVERET_CTL_PASSWORD; default guest)')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    parser.add_argument('--cacert', default=env('LEVERET_CTL_CACERT'),
                        help='CA certificates to check an https:// API with '
                             '(LEVERET_CTL_CACERT)')
    parser.add_argument('--cert', default=env('LEVERET_CTL_CERT'),
                        help='client certificate for https:// (LEVERET_CTL_CERT)')
    parser.add_argument('--key', default=env('LEVERET_CTL_KEY'),
                        help="the client certificate's key (LEVERET_CTL_KEY)")
    # --format also after the command (list queues --format json).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--format', choices=('table', 'json'), default=argparse.SUPPRESS)
    vhost = argparse.ArgumentParser(add_help=False)
    vhost.add_argument('--vhost', '-p', default=None, help='virtual host (default /)')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def command(name: str, func: Callable[[Ctl], None], help_: str,
                parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, parents=[common, *(parents or [])])
        p.set_defaults(func=func)
        return p

    command('status', Ctl.status, 'the broker at a glance')
    p = command('list', Ctl.list, 'list queues, exchanges, bindings, ...', [vhost])
    p.add_argument('kind', choices=sorted(LISTS))
    p.add_argument('columns', nargs='*', help='fields to show (dotted for nested ones)')
    p = command('purge', Ctl.purge, 'purge a queue', [vhost])
    p.add_argument('what', choices=['queue'])
    p.add_argument('name')
    p = command('delete', Ctl.delete, 'delete a queue, exchange, user or vhost', [vhost])
    p.add_argument('what', choices=['queue', 'exchange', 'user', 'vhost'])
    p.add_argument('name')
    p.add_argument('--if-empty', action='store_true')
    p.add_argument('--if-unused', action='store_true')
    p = command('declare', Ctl.declare, 'declare a queue, exchange or binding', [vhost])
    p.add_argument('what', choices=['queue', 'exchange', 'binding'])
    p.add_argument('name', help='the queue or exchange (for a binding: its source)')
    p.add_argument('destination', nargs='?', help='binding: the destination')
    p.add_argument('--destination-type', choices=['queue', 'exchange'], default='queue')
    p.add_argument('--routing-key', default='')
    p.add_argument('--type', help='exchange type (direct); queue type (classic, quorum)')
    p.add_argument('--durable', action=argparse.BooleanOptionalAction, default=True)
    p.add_argument('--auto-delete', action='store_true')
    p.add_argument('--internal', action='store_true')
    p.add_argument('--arguments', help='JSON object of arguments')
    p = command('close', Ctl.close, 'close a connection')
    p.add_argument('what', choices=['connection'])
    p.add_argument('name', help="the connection's name, as 'list connections' shows it")
    p.add_argument('--reason', help='told to the client in its connection.close')
    p = command('add', Ctl.add, 'add a user or a vhost')
    p.add_argument('what', choices=['user', 'vhost'])
    p.add_argument('name')
    p.add_argument('user_password', nargs='?', metavar='password')
    p.add_argument('--tags', help='comma-separated tags (administrator, monitoring, ...)')
    p.add_argument('--description')
    p = command('change', Ctl.change_password, "change a user's password")
    p.add_argument('what', choices=['password'])
    p.add_argument('name')
    p.add_argument('new_password')
    p = command('set', _set, "set a user's tags, permissions, topic permissions or limits, "
                             "or a vhost's limits", [vhost])
    p.add_argument('what', choices=['tags', 'permissions', 'topic_permissions',
                                    'vhost_limits', 'user_limits'])
    p.add_argument('name', help='the user (vhost_limits: the limits, as JSON)')
    p.add_argument('values', nargs='*',
                   help='tags: the tags; permissions: CONFIGURE WRITE READ; topic_permissions: '
                        'EXCHANGE WRITE READ; user_limits: the limits as JSON '
                        '(\'{"max-connections": 10, "max-queues": 100}\')')
    p = command('clear', Ctl.clear, "clear a user's permissions, topic permissions or limits, "
                                    "or a vhost's limits", [vhost])
    p.add_argument('what', choices=['permissions', 'topic_permissions', 'vhost_limits',
                                    'user_limits'])
    p.add_argument('name', nargs='?', default='',
                   help='the user (vhost_limits: one limit, default all)')
    p.add_argument('values', nargs='*', help='user_limits: the limits to clear (default all)')
    p = command('export', Ctl.export, 'export the definitions to a file', [vhost])
    p.add_argument('what', choices=['definitions'])
    p.add_argument('file')
    p = command('import', Ctl.import_, 'import definitions from a file', [vhost])
    p.add_argument('what', choices=['definitions'])
    p.add_argument('file')
    p = command('get', Ctl.get, 'take messages from a queue', [vhost])
    p.add_argument('queue')
    p.add_argument('--count', type=int, default=1)
    p.add_argument('--requeue', action='store_true', help='put them back (a peek)')
    p = command('publish', Ctl.publish, 'publish a message', [vhost])
    p.add_argument('routing_key')
    p.add_argument('payload', nargs='?', help='the body (default: read from stdin)')
    p.add_argument('--exchange', help='default: the default exchange')
    p.add_argument('--properties', help='JSON object of basic properties')
    return parser


def _set(ctl: Ctl) -> None:
    args = ctl.args
    if args.what == 'tags':
        args.tags = args.values
        ctl.set_tags()
        return
    if args.what == 'vhost_limits':
        ctl.set_limits(f'/vhost-limits/{segment(ctl.vhost)}', args.name)
        return
    if args.what == 'user_limits':
        if len(args.values) != 1:
            raise UsageError("set user_limits USER '{\"max-connections\": 10}'")
        ctl.set_limits(f'/user-limits/{segment(args.name)}', args.values[0])
        return
    if args.what == 'topic_permissions':
        if len(args.values) != 3:
            raise UsageError('set topic_permissions USER EXCHANGE WRITE READ')
        args.user = args.name
        args.exchange, args.write, args.read = args.values
        ctl.set_topic_permissions()
        return
    if len(args.values) != 3:
        raise UsageError('set permissions USER CONFIGURE WRITE READ')
    args.user = args.name
    args.configure, args.write, args.read = args.values
    ctl.set_permissions()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.vhost_given = getattr(args, 'vhost', None) is not None
    if not args.vhost_given:
        args.vhost = '/'
    if getattr(args, 'what', None) == 'binding' and not args.destination:
        parser.error('declare binding SOURCE DESTINATION')
    url = urlsplit(args.url)
    if url.scheme not in ('http', 'https') or not url.netloc:
        parser.error(f'--url must be an http:// or https:// URL, not {args.url!r}')
    try:
        ctl = Ctl(args)
        args.func(ctl)
        sys.stdout.flush()      # here, where a closed pipe is caught, not at exit
    except UsageError as exc:
        print(f'leveret ctl: {exc}', file=sys.stderr)
        return USAGE
    except Refused as exc:
        print(f'leveret ctl: refused: {exc}', file=sys.stderr)
        return REFUSED
    except Unreachable as exc:
        print(f'leveret ctl: {exc}', file=sys.stderr)
        return UNREACHABLE
    except KeyboardInterrupt:
        return REFUSED
    except BrokenPipeError:
        # The reader stopped early (`leveret ctl list queues | head`): not an
        # error; point stdout at /dev/null so that the exit flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return OK


if __name__ == '__main__':
    sys.exit(main())
