"""Model and session objects as the dicts RabbitMQ 3.10's API returns.

Every key RabbitMQ returns is here, in its type (strict clients fail on a
missing key); values Leveret has no equivalent of carry RabbitMQ's neutral
value (``null``, ``0``, ``[]``) and are listed in docs/management.md.
Counters come from :mod:`..model.counters`, rates from their last two
samples.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..model.counters import ChannelCounters, ClosedChannels
from ..model.ready import PriorityReady

if TYPE_CHECKING:
    from ..model.exchanges import Exchange
    from ..model.queue import Queue
    from ..model.vhost import VirtualHost
    from ..session.channel import Channel
    from ..session.connection import Connection
    from ..session.consumer import Consumer

GARBAGE_COLLECTION = {'fullsweep_after': 65535, 'max_heap_size': 0,
                      'min_bin_vheap_size': 46422, 'min_heap_size': 233, 'minor_gcs': 0}
ZERO_RATE = {'rate': 0.0}


def rate(value: float) -> dict[str, float]:
    return {'rate': float(value)}


def timestamp(seconds: float) -> str:
    """RFC 3339 with milliseconds, as RabbitMQ writes ``idle_since``."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime('%Y-%m-%dT%H:%M:%S.') + f'{moment.microsecond // 1000:03d}+00:00'


def to_json(value: Any) -> Any:
    """An AMQP field value as JSON (as RabbitMQ renders it)."""
    if isinstance(value, dict):
        return {_name(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return 'Not UTF-8, base64 is: ' + base64.b64encode(raw).decode()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if value is None:
        return 'undefined'
    return value


def _name(key: Any) -> str:
    """A field name as JSON: one that is not UTF-8 (kept by the field-table
    decoder with ``surrogateescape``) as its bytes in base64, as values are."""
    key = str(key)
    try:
        key.encode()
    except UnicodeEncodeError:
        raw = key.encode('utf-8', 'surrogateescape')
        return 'Not UTF-8, base64 is: ' + base64.b64encode(raw).decode()
    return key


def properties_key(routing_key: str, arguments: Mapping[str, Any]) -> str:
    """How a binding is named in paths: its key, ``~`` and a hash of its
    arguments when it has any (``~`` alone for no key and no arguments)."""
    if not arguments:
        return routing_key or '~'
    digest = hashlib.sha1(repr(sorted((k, repr(v)) for k, v in arguments.items()))
                          .encode()).digest()[:4]
    return f'{routing_key}~' + base64.urlsafe_b64encode(digest).decode().rstrip('=')


# --- message_stats --------------------------------------------------------------
def _stats(counted: Any, names: Iterable[str], rates: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        out[name] = getattr(counted, f'stat_{name}')
        out[f'{name}_details'] = rate(rates.get(f'stat_{name}', 0.0))
    return out


def _with_deliver_get(stats: dict[str, Any]) -> dict[str, Any]:
    total = stats['deliver'] + stats['deliver_no_ack'] + stats['get'] + stats['get_no_ack']
    total_rate = sum(stats[f'{k}_details']['rate']
                     for k in ('deliver', 'deliver_no_ack', 'get', 'get_no_ack'))
    stats['deliver_get'] = total
    stats['deliver_get_details'] = rate(round(total_rate, 1))
    return dict(sorted(stats.items()))


QUEUE_STATS = ('publish', 'deliver', 'deliver_no_ack', 'get', 'get_no_ack', 'get_empty', 'ack',
               'redeliver')
CHANNEL_STATS = QUEUE_STATS + ('confirm', 'return_unroutable', 'drop_unroutable')


def queue_stats(queue: Queue) -> dict[str, Any] | None:
    """``message_stats`` of a queue; None until it saw any traffic (as RabbitMQ)."""
    if not any(getattr(queue, f'stat_{n}') for n in QUEUE_STATS):
        return None
    return _with_deliver_get(_stats(queue, QUEUE_STATS, queue.rates()))


def channel_stats(counted: ChannelCounters) -> dict[str, Any]:
    return _with_deliver_get(_stats(counted, CHANNEL_STATS, counted.rates()))


def sum_channel_stats(stats: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for one in stats:
        for key, value in one.items():
            if isinstance(value, dict):
                old = total.get(key, ZERO_RATE)['rate']
                total[key] = rate(round(old + value['rate'], 1))
            else:
                total[key] = total.get(key, 0) + value
    if not total:
        total = channel_stats(ClosedChannels())
    return dict(sorted(total.items()))


# --- queues ---------------------------------------------------------------------
def queue(q: Queue, node: str, unacked: tuple[int, int] = (0, 0),
          with_consumers: bool = False) -> dict[str, Any]:
    """``unacked`` is (messages, bytes) delivered and not acked yet."""
    ready = len(q.ready)
    ready_bytes = q.ready_bytes
    n_unacked, unacked_bytes = unacked
    rates = q.rates()
    consumers = len(q.consumers)
    quorum = q.args.queue_type == 'quorum'
    persistent = ready + n_unacked if q.persists else 0
    persistent_bytes = ready_bytes + unacked_bytes if q.persists else 0
    out: dict[str, Any] = {}
    if with_consumers:
        out['consumer_details'] = [consumer(c, node) for c in q.consumers]
    out.update({
        'arguments': to_json(q.arguments),
        'auto_delete': q.auto_delete,
        'consumer_capacity': 1.0 if consumers else 0.0,
        'consumer_utilisation': 1.0 if consumers else 0.0,
        'consumers': consumers,
        'durable': q.durable,
        'effective_policy_definition': {},
        'exclusive': q.exclusive,
        'garbage_collection': dict(GARBAGE_COLLECTION),
        'memory': 1024 + ready_bytes + 120 * ready,
        'message_bytes': ready_bytes + unacked_bytes,
        'message_bytes_persistent': persistent_bytes,
        'message_bytes_ram': ready_bytes + unacked_bytes,
        'message_bytes_ready': ready_bytes,
        'message_bytes_unacknowledged': unacked_bytes,
        'messages': ready + n_unacked,
        'messages_details': rate(round(rates['message_count'] + rates['sampled_unacked'], 1)),
        'messages_persistent': persistent,
        'messages_ram': ready + n_unacked,
        'messages_ready': ready,
        'messages_ready_details': rate(rates['message_count']),
        'messages_unacknowledged': n_unacked,
        'messages_unacknowledged_details': rate(rates['sampled_unacked']),
        'name': q.name,
        'node': node,
        'operator_policy': None,
        'policy': None,
        'reductions': 0,
        'reductions_details': dict(ZERO_RATE),
        'state': 'running',
        'type': q.args.queue_type,
        'vhost': q.vhost_name,
    })
    active = _single_active_tag(q)
    if quorum:
        out.update({
            'leader': node, 'members': [node], 'online': [node], 'open_files': {node: 0},
            'messages_dlx': 0, 'message_bytes_dlx': 0, 'single_active_consumer_ctag': active,
        })
    # Classic-queue keys (a quorum queue shows them too: one shape for every queue).
    out.update({
        'backing_queue_status': {
            'avg_ack_egress_rate': 0.0, 'avg_ack_ingress_rate': 0.0,
            'avg_egress_rate': 0.0, 'avg_ingress_rate': 0.0,
            'delta': ['delta', 'undefined', 0, 0, 'undefined'], 'len': ready,
            'mode': 'default', 'next_deliver_seq_id': 0, 'next_seq_id': 0,
            'q1': 0, 'q2': 0, 'q3': 0, 'q4': ready, 'target_ram_count': 'infinity',
            'version': 2},
        'exclusive_consumer_tag': next((c.tag for c in q.consumers
                                        if getattr(c, 'exclusive', False)), None),
        'head_message_timestamp': None,
        'message_bytes_paged_out': 0,
        'messages_paged_out': 0,
        'messages_ready_ram': ready,
        'messages_unacknowledged_ram': n_unacked,
        'recoverable_slaves': None,
        'single_active_consumer_tag': active,
    })
    if isinstance(q.ready, PriorityReady):
        out['backing_queue_status']['priority_lengths'] = {
            str(p): n for p, n in sorted(q.ready.lengths().items(), reverse=True)}
    if q.idle_since is not None:
        out['idle_since'] = timestamp(q.idle_since)
    stats = queue_stats(q)
    if stats is not None:
        out['message_stats'] = stats
    if with_consumers:
        out['deliveries'] = []
        out['incoming'] = []
    return dict(sorted(out.items())) if not with_consumers else out


def _single_active_tag(q: Queue) -> str | None:
    if q.args.single_active_consumer and q.consumers:
        return getattr(q.consumers[0], 'tag', None)
    return None


# --- consumers ------------------------------------------------------------------
def channel_details(ch: Channel, node: str) -> dict[str, Any]:
    conn = ch.conn
    return {'connection_name': conn.name, 'name': channel_name(ch), 'node': node,
            'number': ch.id, 'peer_host': conn.peer_host, 'peer_port': conn.peer_port,
            'user': conn.username}


def channel_name(ch: Channel) -> str:
    return f'{ch.conn.name} ({ch.id})'


def consumer(c: Any, node: str) -> dict[str, Any]:
    q = c.queue
    single = q.args.single_active_consumer
    active = not single or (bool(q.consumers) and q.consumers[0] is c)
    return {
        'arguments': to_json(c.arguments),
        'channel_details': channel_details(c.channel, node),
        'ack_required': not c.no_ack,
        'active': active,
        'activity_status': ('single_active' if active else 'waiting') if single else 'up',
        'consumer_tag': c.tag,
        # Leveret has no consumer ack timeout: 0 (an integer: tools print it).
        'consumer_timeout': 0,
        'exclusive': c.exclusive,
        'prefetch_count': c.prefetch,
        'queue': {'name': q.name, 'vhost': q.vhost_name},
    }


def consumers_of(channels: Iterable[Channel]) -> list[Consumer]:
    return [c for ch in channels for c in ch.consumers.values()]


# --- exchanges and bindings -------------------------------------------------------
def exchange(e: Exchange, vhost: str) -> dict[str, Any]:
    name = e.name or 'amq.default'
    out: dict[str, Any] = {
        'arguments': to_json(e.arguments),
        'auto_delete': e.auto_delete,
        'durable': e.durable,
        'internal': e.internal,
        'name': e.name,
        'type': e.kind,
        # Who declared it is not kept (RabbitMQ: rmq-internal for its own).
        'user_who_performed_action': 'rmq-internal' if name.startswith('amq.') else '',
        'vhost': vhost,
    }
    if e.stat_publish_in or e.stat_publish_out:
        rates = e.rates()
        out['message_stats'] = {
            'publish_in': e.stat_publish_in,
            'publish_in_details': rate(rates['stat_publish_in']),
            'publish_out': e.stat_publish_out,
            'publish_out_details': rate(rates['stat_publish_out']),
        }
    return out


def binding(vhost: str, source: str, destination: Any, routing_key: str,
            arguments: Mapping[str, Any]) -> dict[str, Any]:
    from ..model.queue import Queue
    return {
        'source': source,
        'vhost': vhost,
        'destination': destination.name,
        'destination_type': 'queue' if isinstance(destination, Queue) else 'exchange',
        'routing_key': routing_key,
        'arguments': to_json(dict(arguments)),
        'properties_key': properties_key(routing_key, arguments),
    }


#: A binding not shaped yet, its sort key first: (source, to a queue,
#: destination name, routing key, properties key, vhost, destination,
#: arguments).  A list of 10,000 bindings is sorted as rows (on the key's
#: C-level itemgetter: a fifth of the time of a Python key function) and only
#: the page is shaped, between loop turns.
BindingRow = tuple[str, bool, str, str, str, str, Any, Mapping[str, Any]]
_ORDER = itemgetter(0, 1, 2, 3, 4)


def binding_rows_from(vhost: str, bindings: Iterable[tuple[str, Any, str, Mapping[str, Any]]]
                      ) -> list[BindingRow]:
    """Rows of ``(source name, destination, routing key, arguments)`` in
    RabbitMQ's order: source, destination type (exchanges first),
    destination, routing key, properties key."""
    from ..model.queue import Queue
    rows: list[BindingRow] = [
        (source, isinstance(destination, Queue), destination.name, key,
         properties_key(key, arguments) if arguments else key or '~',
         vhost, destination, arguments)
        for source, destination, key, arguments in bindings]
    rows.sort(key=_ORDER)
    return rows


def binding_of_row(row: BindingRow) -> dict[str, Any]:
    source, to_queue, name, key, props, vhost, _destination, arguments = row
    return {
        'source': source,
        'vhost': vhost,
        'destination': name,
        'destination_type': 'queue' if to_queue else 'exchange',
        'routing_key': key,
        'arguments': to_json(dict(arguments)),
        'properties_key': props,
    }


def binding_rows(v: VirtualHost) -> list[BindingRow]:
    """Every binding of a vhost, the default exchange's implicit ones first."""
    implicit = binding_rows_from(v.name, [('', q, q.name, {}) for q in v.queues.values()])
    return implicit + binding_rows_from(v.name, [
        (e.name, destination, key, arguments)
        for e in v.exchanges.values() if e.name
        for (destination, key, _), arguments in e.bindings.items()])


# --- connections and channels ---------------------------------------------------
def connection(conn: Connection, node: str) -> dict[str, Any]:
    rates = conn.rates()
    props = conn.client_properties or {}
    tls = conn.tls
    return {
        'auth_mechanism': conn.auth_mechanism,
        'channel_max': conn.channel_max,
        'channels': len(conn.channels),
        'client_properties': to_json(props),
        'connected_at': int(conn.connected_at * 1000),
        'frame_max': conn.frame_max,
        'garbage_collection': dict(GARBAGE_COLLECTION),
        'host': conn.host,
        'name': conn.name,
        'node': node,
        'peer_cert_issuer': tls.peer_cert_issuer if tls else None,
        'peer_cert_subject': tls.peer_cert_subject if tls else None,
        'peer_cert_validity': tls.peer_cert_validity if tls else None,
        'peer_host': conn.peer_host,
        'peer_port': conn.peer_port,
        'port': conn.port,
        'protocol': 'AMQP 0-9-1',
        'recv_cnt': conn.recv_cnt,
        'recv_oct': conn.recv_oct,
        'recv_oct_details': rate(rates['recv_oct']),
        'reductions': 0,
        'reductions_details': dict(ZERO_RATE),
        'send_cnt': conn.send_cnt,
        'send_oct': conn.send_oct,
        'send_oct_details': rate(rates['send_oct']),
        'send_pend': 0,
        'ssl': tls is not None,
        'ssl_cipher': tls.cipher if tls else None,
        'ssl_hash': tls.hash if tls else None,
        'ssl_key_exchange': tls.key_exchange if tls else None,
        'ssl_protocol': tls.protocol if tls else None,
        'state': 'blocked' if conn.blocked else 'running',
        'timeout': conn.heartbeat,
        'type': 'network',
        'user': conn.username,
        'user_provided_name': to_json(props['connection_name'])
        if 'connection_name' in props else None,
        'user_who_performed_action': conn.username,
        'vhost': conn.vhost.name if conn.vhost is not None else None,
    }


def channel(ch: Channel, node: str, with_consumers: bool = False) -> dict[str, Any]:
    conn = ch.conn
    out: dict[str, Any] = {
        'acks_uncommitted': ch.tx_pending_acks(),
        'confirm': ch.confirm_mode,
        'connection_details': {'name': conn.name, 'peer_host': conn.peer_host,
                               'peer_port': conn.peer_port},
        'consumer_count': len(ch.consumers),
        'garbage_collection': dict(GARBAGE_COLLECTION),
        'global_prefetch_count': ch.global_prefetch,
        'message_stats': channel_stats(ch),
        'messages_unacknowledged': len(ch.unacked),
        'messages_uncommitted': ch.tx_pending_publishes(),
        'messages_unconfirmed': ch.unconfirmed(),
        'name': channel_name(ch),
        'node': node,
        'number': ch.id,
        'pending_raft_commands': 0,
        'prefetch_count': ch.prefetch,
        'reductions': 0,
        'reductions_details': dict(ZERO_RATE),
        'state': 'running' if ch.deliverable or not ch.consumers else 'flow',
        'transactional': ch.tx_mode,
        'user': conn.username,
        'user_who_performed_action': conn.username,
        'vhost': ch.vhost.name,
    }
    if ch.idle_since is not None:
        out['idle_since'] = timestamp(ch.idle_since)
    if with_consumers:
        out['consumer_details'] = [consumer(c, node) for c in ch.consumers.values()]
        out['deliveries'] = []
        out['publishes'] = []
    return out


# --- vhosts and users -------------------------------------------------------------
def length_rates(queues: Iterable[Queue]) -> tuple[float, float]:
    """How fast the ready and the unacked messages of ``queues`` grow, per second."""
    ready = unacked = 0.0
    for q in queues:
        ready_rate, unacked_rate = q.length_rates()
        ready += ready_rate
        unacked += unacked_rate
    return round(ready, 1), round(unacked, 1)


def queue_totals(ready: int, unacked: int, queues: Iterable[Queue]) -> dict[str, Any]:
    ready_rate, unacked_rate = length_rates(queues)
    return {
        'messages': ready + unacked, 'messages_details': rate(round(ready_rate + unacked_rate,
                                                                    1)),
        'messages_ready': ready, 'messages_ready_details': rate(ready_rate),
        'messages_unacknowledged': unacked, 'messages_unacknowledged_details': rate(unacked_rate),
    }


def vhost(v: VirtualHost, node: str, channels: Iterable[Channel],
          connections: Iterable[Connection], totals: tuple[int, int]) -> dict[str, Any]:
    """``totals``: the vhost's (ready, unacked) messages."""
    ready, unacked = totals
    conns = list(connections)
    stats = sum_channel_stats([channel_stats(v.closed_channels)]
                              + [channel_stats(ch) for ch in channels])
    rates = [c.rates() for c in conns]
    return {
        'name': v.name,
        'description': v.description,
        'tags': list(v.tags),
        'default_queue_type': v.default_queue_type,
        'metadata': {'description': v.description, 'tags': list(v.tags)},
        'tracing': False,
        'cluster_state': {node: 'running'},
        'send_oct': sum(c.send_oct for c in conns),
        'send_oct_details': rate(round(sum(r['send_oct'] for r in rates), 1)),
        'recv_oct': sum(c.recv_oct for c in conns),
        'recv_oct_details': rate(round(sum(r['recv_oct'] for r in rates), 1)),
        **queue_totals(ready, unacked, v.queues.values()),
        'message_stats': stats,
    }


def user(u: Any) -> dict[str, Any]:
    return {'name': u.name, 'password_hash': u.password_hash,
            'hashing_algorithm': u.hashing_algorithm, 'tags': list(u.tags), 'limits': {}}


def permission(vhost_name: str, user_name: str, p: Any) -> dict[str, Any]:
    return {'user': user_name, 'vhost': vhost_name, 'configure': p.configure,
            'write': p.write, 'read': p.read}


def topic_permission(vhost_name: str, user_name: str, p: Any) -> dict[str, Any]:
    return {'user': user_name, 'vhost': vhost_name, 'exchange': p.exchange,
            'write': p.write, 'read': p.read}
