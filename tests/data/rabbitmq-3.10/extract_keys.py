"""Writes keys.json: the key paths RabbitMQ 3.10 returns, per kind of object,
from the captures of a real RabbitMQ 3.10.8 (not a test; run it by hand:
``python extract_keys.py /path/to/ref/mgmt``).

A path is dotted (``message_stats.publish_details.rate``); ``[]`` walks into
the objects of a list (``consumer_details[].queue.name``).  Values that are
data rather than structure (arguments, client properties, ...) are not
walked into.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPAQUE = {'arguments', 'client_properties', 'cluster_state', 'effective_policy_definition',
          'open_files', 'socket_opts', 'properties', 'definition', 'limits', 'memory',
          'applications', 'auth_mechanisms', 'contexts', 'exchange_types', 'value'}

#: kind -> (capture file, which objects of it)
SOURCES = {
    'overview': ('api_overview.json', None),
    'queue': ('api_queues.json', 'classic'),
    'queue_quorum': ('api_queues.json', 'quorum'),
    'queue_single': ('api_queues_%2F_q.classic.json', None),
    'exchange': ('api_exchanges.json', None),
    'exchange_single': ('api_exchanges_%2F_ex.direct.json', None),
    'binding': ('api_bindings.json', None),
    'connection': ('api_connections.json', None),
    'channel': ('api_channels.json', None),
    'channel_single': ('api_channels_CHAN-ref-consumer-1.json', None),
    'consumer': ('api_consumers.json', None),
    'vhost': ('api_vhosts.json', None),
    'user': ('api_users.json', None),
    'permission': ('api_permissions.json', None),
    'topic_permission': ('api_topic-permissions.json', None),
    'whoami': ('api_whoami.json', None),
    'node': ('api_nodes.json', None),
    'paged': ('api_queues__page=1_page_size=2.json', 'top'),
    'definitions': ('api_definitions.json', None),
    'definitions_vhost': ('api_definitions_%2F.json', None),
    'get': ('POST_api_queues_%2F_q.scratch_get__auto.json', None),
}


def paths(value: object, prefix: str = '') -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f'{prefix}{key}'
            out.add(path)
            if key in OPAQUE:
                continue
            out |= paths(item, path + '.')
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                out |= paths(item, prefix.rstrip('.') + '[].')
    return out


def main(ref: Path) -> None:
    keys = {}
    for kind, (name, which) in SOURCES.items():
        data = json.loads((ref / name).read_text())
        if which == 'top':
            found = set(data)
        else:
            items = data if isinstance(data, list) else [data]
            if which is not None:
                items = [i for i in items if i.get('type') == which]
            found = set().union(*(paths(i) for i in items))
        keys[kind] = sorted(found)
    out = Path(__file__).with_name('keys.json')
    out.write_text(json.dumps(keys, indent=1) + '\n')


if __name__ == '__main__':
    main(Path(sys.argv[1]))
