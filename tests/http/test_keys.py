"""Every key RabbitMQ 3.10 returns is in Leveret's answer, endpoint by endpoint.

The reference key sets (tests/data/rabbitmq-3.10/keys.json) come from the
captures of a real RabbitMQ 3.10.8 with the topology of :mod:`.topology`;
the few keys Leveret leaves out on purpose are listed here and in
docs/management.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import BrokerProcess
from .client import Api
from .conftest import DATA
from .topology import Topology

REFERENCE: dict[str, list[str]] = json.loads((DATA / 'keys.json').read_text())

#: Keys RabbitMQ returns that Leveret does not (docs/management.md says why).
LEFT_OUT = {
    # No policies, no global parameters: nothing to list in an export.
    'definitions': {'policies[].apply-to', 'policies[].definition', 'policies[].name',
                    'policies[].pattern', 'policies[].priority', 'policies[].vhost',
                    'global_parameters[].name', 'global_parameters[].value'},
    'definitions_vhost': {'policies[].apply-to', 'policies[].definition', 'policies[].name',
                          'policies[].pattern', 'policies[].priority', 'policies[].vhost'},
}


def paths(value: object, prefix: str = '') -> set[str]:
    """Key paths as extract_keys.py writes them."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('extract_keys', DATA / 'extract_keys.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.paths(value, prefix)  # type: ignore[no-any-return]


@pytest.fixture(scope='module')
def leveret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Topology]]:
    base = tmp_path_factory.mktemp('keys')
    proc = BrokerProcess(base / 'data', base / 'broker.log').start()
    api = Api(proc.api)
    topology = Topology(proc.url, api)
    yield api, topology
    topology.close()
    proc.kill()


def union(items: list[dict]) -> set[str]:
    return set().union(*(paths(item) for item in items))


def answers(api: Api) -> dict[str, set[str]]:
    queues = api.get('/queues')
    return {
        'overview': paths(api.get('/overview')),
        'queue': union([q for q in queues if q['type'] == 'classic']),
        'queue_quorum': union([q for q in queues if q['type'] == 'quorum']),
        'queue_single': paths(api.get('/queues/%2F/q.classic')),
        'exchange': union(api.get('/exchanges')),
        'exchange_single': paths(api.get('/exchanges/%2F/ex.direct')),
        'binding': union(api.get('/bindings')),
        'connection': union(api.get('/connections')),
        'channel': union(api.get('/channels')),
        'channel_single': paths(api.get(
            '/channels/' + api.get('/channels')[0]['name'].replace(' ', '%20')
            .replace('>', '%3E'))),
        'consumer': union(api.get('/consumers')),
        'vhost': union(api.get('/vhosts')),
        'user': union(api.get('/users')),
        'permission': union(api.get('/permissions')),
        'topic_permission': union(api.get('/topic-permissions')),
        'whoami': paths(api.get('/whoami')),
        'node': union(api.get('/nodes')),
        'paged': set(api.get('/queues?page=1&page_size=2')),
        'definitions': paths(api.get('/definitions')),
        'definitions_vhost': paths(api.get('/definitions/%2F')),
        'get': union(api.post('/queues/%2F/q.classic/get', {
            'count': 2, 'ackmode': 'ack_requeue_true', 'encoding': 'auto'}).json),
    }


def test_every_key_rabbitmq_returns_is_there(leveret):
    api, topology = leveret
    assert api.put('/topic-permissions/%2F/guest', {'exchange': 'amq.topic', 'write': '.*',
                                                    'read': '.*'}).status == 201
    got = answers(api)
    missing = {kind: sorted(set(keys) - got[kind] - LEFT_OUT.get(kind, set()))
               for kind, keys in REFERENCE.items()}
    missing = {kind: keys for kind, keys in missing.items() if keys}
    assert not missing, json.dumps(missing, indent=1)


def test_the_keys_left_out_are_the_ones_documented():
    text = (Path(__file__).resolve().parents[2] / 'docs' / 'management.md').read_text()
    for kind, keys in LEFT_OUT.items():
        for key in keys:
            assert key.partition('[')[0] in text, (kind, key)


def test_the_default_vhost_is_2f_in_paths_and_a_trailing_slash_changes_nothing(leveret):
    api, _ = leveret
    everything = api.get('/queues')
    assert api.get('/queues/') == everything
    assert {q['name'] for q in api.get('/queues/%2F')} == {
        q['name'] for q in everything if q['vhost'] == '/'}
    assert api('GET', '/queues//').status == 404
    assert api('GET', '/queues/%252F').status == 404
