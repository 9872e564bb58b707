"""Leveret's metric families against RabbitMQ 3.10's (tests/data/rabbitmq-3.10/,
scraped from a real node) and against what the Grafana RabbitMQ-Overview
dashboard reads: every family is served with RabbitMQ's type and labels or
listed in docs/metrics.md with the reason it is left out, and the list
tells the truth."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pika
import pytest

from .scrape import Family, parse, sample_names, scrape

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / 'tests' / 'data' / 'rabbitmq-3.10'
DOC = ROOT / 'docs' / 'metrics.md'

ENDPOINTS = {'/metrics': 'metrics.txt', '/metrics/per-object': 'metrics_per-object.txt'}


def reference(endpoint: str) -> dict[str, Family]:
    return parse((REFERENCE / ENDPOINTS[endpoint]).read_text())


def grafana_metrics() -> dict[str, str]:
    """Metric name -> TYPE, from GRAFANA.md's table of every metric the dashboard reads."""
    text = (REFERENCE / 'GRAFANA.md').read_text()
    table = text.split('## Every metric name referenced', 1)[1].split('## ', 1)[0]
    found = dict(re.findall(r'^\| `([a-z_]+)` \| (\w+) \|', table, re.M))
    assert len(found) > 30, 'GRAFANA.md table not found'
    return found


def doc_table(heading: str) -> list[str]:
    """The names (patterns) in the first column of a table of docs/metrics.md."""
    text = DOC.read_text()
    section = text.split(f'### {heading}', 1)[1].split('\n#', 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith('| `'):
            names.extend(re.findall(r'`([a-z_*]+)`', line.split(' | ')[0]))
    assert names, f'no table under {heading!r}'
    return names


def listed(family: Family, patterns: list[str]) -> bool:
    names = {family.name, family.name + '_total'}
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


@pytest.fixture(scope='module')
def topology(broker):
    """Queues with ready and unacked messages, a consumer holding them, a
    publisher in confirm mode, an unroutable mandatory message and a get."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.queue_declare('ref.held', durable=True)
    ch.queue_declare('ref.ready')
    ch.confirm_delivery()
    for i in range(8):
        ch.basic_publish('', 'ref.held', f'held {i}'.encode())
        ch.basic_publish('', 'ref.ready', f'ready {i}'.encode())
    try:
        ch.basic_publish('amq.direct', 'nowhere', b'lost', mandatory=True)
    except pika.exceptions.UnroutableError:
        pass
    getter = conn.channel()
    getter.basic_get('ref.ready', auto_ack=False)
    getter.basic_get('ref.ready', auto_ack=True)
    consumer = conn.channel()
    consumer.basic_qos(prefetch_count=5)
    consumer.basic_consume('ref.held', lambda *args: None)
    conn.process_data_events(time_limit=0.5)
    yield conn
    ch.queue_delete('ref.ready')
    ch.queue_delete('ref.held')
    conn.close()


@pytest.fixture(scope='module')
def scrapes(broker, topology):
    base = f'http://127.0.0.1:{broker.metrics_port}'
    return {endpoint: parse(scrape(base + endpoint)) for endpoint in ENDPOINTS}


def test_every_metric_the_grafana_dashboard_reads_is_served_with_its_type(scrapes):
    ours = sample_names(scrapes['/metrics'])
    ref = sample_names(reference('/metrics'))
    for name, kind in grafana_metrics().items():
        assert name in ours, f'{name} (read by the dashboard) is not served'
        expected = 'unknown' if kind == 'untyped' else kind
        assert ours[name].type == expected == ref[name].type, name
        if name not in ('rabbitmq_identity_info', 'rabbitmq_build_info'):
            # Aggregated: no labels, so that group_left can add the node's.
            assert ours[name].labels <= ref[name].labels, (name, ours[name].labels)


def test_one_identity_series_carries_the_labels_every_panel_joins_on(scrapes):
    for endpoint, families in scrapes.items():
        identity = families['rabbitmq_identity_info']
        assert len(identity.samples) == 1
        _, labels, value = identity.samples[0]
        assert value == 1
        assert {'rabbitmq_node', 'rabbitmq_cluster', 'rabbitmq_endpoint'} <= set(labels)
        assert labels['rabbitmq_endpoint'] == endpoint.rsplit('/', 1)[1].replace(
            'metrics', 'aggregated')
        assert families['rabbitmq_build_info'].samples[0][2] == 1
        assert {'rabbitmq_version', 'erlang_version', 'prometheus_client_version',
                'prometheus_plugin_version'} <= families['rabbitmq_build_info'].labels
        for family in families.values():
            if family.name != 'rabbitmq_identity_info':
                assert not family.labels & {'rabbitmq_node', 'rabbitmq_cluster'}, family.name


@pytest.mark.parametrize('endpoint', list(ENDPOINTS))
def test_every_family_of_rabbitmq_is_served_alike_or_listed_as_left_out(scrapes, endpoint):
    ours = scrapes[endpoint]
    left_out = doc_table('Left out')
    differ = doc_table('Labels that differ')
    for family in reference(endpoint).values():
        if listed(family, left_out):
            assert family.name not in ours, f'{family.name} is served but listed as left out'
            continue
        assert family.name in ours, f'{family.name} is neither served nor listed in {DOC.name}'
        mine = ours[family.name]
        assert mine.type == family.type, family.name
        if not listed(family, differ):
            assert mine.labels == family.labels, (family.name, mine.labels, family.labels)


def test_what_the_doc_lists_exists_in_rabbitmq(scrapes):
    everything = list(reference('/metrics').values()) + list(
        reference('/metrics/per-object').values())
    for pattern in doc_table('Left out') + doc_table('Labels that differ'):
        assert any(listed(family, [pattern]) for family in everything), (
            f'{pattern} is in {DOC.name} but RabbitMQ has no such family')


#: The families issue 12 names, with RabbitMQ's spelling of the basic.get ones.
ISSUE_FAMILIES = (
    ['rabbitmq_identity_info', 'rabbitmq_build_info', 'rabbitmq_connections',
     'rabbitmq_channels', 'rabbitmq_queues', 'rabbitmq_consumers', 'rabbitmq_channel_consumers',
     'rabbitmq_queue_messages_ready', 'rabbitmq_queue_messages_unacked',
     'rabbitmq_queue_messages', 'rabbitmq_process_resident_memory_bytes',
     'rabbitmq_resident_memory_limit_bytes', 'rabbitmq_alarms_memory_used_watermark',
     'rabbitmq_disk_space_available_bytes', 'rabbitmq_process_open_fds',
     'rabbitmq_process_max_fds']
    + [f'rabbitmq_global_messages_{name}_total' for name in (
        'received', 'routed', 'confirmed', 'delivered', 'delivered_consume_auto_ack',
        'delivered_consume_manual_ack', 'delivered_get_auto_ack', 'delivered_get_manual_ack',
        'redelivered', 'acknowledged', 'get_empty', 'unroutable_dropped',
        'unroutable_returned')]
    + [f'rabbitmq_channel_messages_{name}_total' for name in (
        'published', 'confirmed', 'unroutable_dropped', 'unroutable_returned', 'delivered',
        'delivered_ack', 'redelivered', 'acked')]
    + ['rabbitmq_channel_get_total', 'rabbitmq_channel_get_ack_total',
       'rabbitmq_channel_get_empty_total']
    + [f'rabbitmq_{what}_{event}_total' for what in ('connections', 'channels')
       for event in ('opened', 'closed')]
    + [f'rabbitmq_queues_{event}_total' for event in ('declared', 'created', 'deleted')])


def test_every_family_the_issue_names_is_served(scrapes):
    ours = sample_names(scrapes['/metrics'])
    missing = [name for name in ISSUE_FAMILIES if name not in ours]
    assert not missing


def test_per_object_series_are_labelled_by_vhost_and_queue(scrapes):
    ready = scrapes['/metrics/per-object']['rabbitmq_queue_messages_ready']
    assert ready.value(vhost='/', queue='ref.ready') == 6      # 8, less two gets
    assert ready.value(vhost='/', queue='ref.held') == 3       # 5 held by the consumer
    unacked = scrapes['/metrics/per-object']['rabbitmq_queue_messages_unacked']
    assert unacked.value(vhost='/', queue='ref.held') == 5
    assert unacked.value(vhost='/', queue='ref.ready') == 1    # the get not acked
