"""The Prometheus endpoint of a running broker: promtool finds the exposition
clean, the numbers follow what real clients do, the off switch, errors."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess

import aio_pika
import pika
import pytest

from leveret.broker.config import Settings
from leveret.broker.metrics import exporter
from leveret.broker.server import Broker
from leveret.broker.store.memory import MemoryStore

from ..processes import wait_until
from .scrape import get, parse, scrape


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which('promtool')
    if tool is None:
        pytest.fail('promtool is not installed (apt-get install prometheus; .ci/run does)')
    return subprocess.run([tool, 'check', 'metrics'], input=text, capture_output=True,
                          text=True)


@pytest.mark.parametrize('path', ['/metrics', '/metrics/per-object'])
def test_promtool_finds_the_exposition_clean(broker, unique, path):
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        ch.basic_publish('', unique, b'x')
        ch.basic_consume(unique, lambda *args: None)
        conn.process_data_events(time_limit=0.2)
        text = scrape(f'http://127.0.0.1:{broker.metrics_port}{path}')
        ch.queue_delete(unique)
    result = promtool(text)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    assert 'rabbitmq_queue_messages_ready' in text


def test_counts_follow_what_a_client_does(fresh_broker, unique):
    broker = fresh_broker.start()
    url = broker.metrics_url

    def per_object():
        return parse(scrape(url + '/per-object'))

    before = parse(scrape(url))
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        ch.queue_declare(unique)
        for _ in range(10):
            ch.basic_publish('', unique, b'0123456789')
        ch.basic_publish('', 'no-such-queue', b'dropped')
        for _ in range(4):
            method, _, _ = ch.basic_get(unique, auto_ack=False)
            ch.basic_ack(method.delivery_tag)
        ch.basic_get(unique, auto_ack=True)
        wait_until(lambda: per_object()['rabbitmq_queue_messages_ready'].value(
            queue=unique) == 5)
        families = per_object()
        assert families['rabbitmq_queue_messages_ready_bytes'].value(queue=unique) == 50
        assert families['rabbitmq_queue_messages_published'].value(queue=unique) == 10
        assert families['rabbitmq_channel_get_ack'].value() == 4
        assert families['rabbitmq_channel_get'].value() == 1
        assert families['rabbitmq_channel_messages_unroutable_dropped'].value() == 1
        assert families['rabbitmq_connections'].value() == 1
    after = parse(scrape(url))
    # The connection is gone, its channel's counts are not.
    assert after['rabbitmq_connections'].value() == 0
    assert after['rabbitmq_channel_messages_published'].value() == 11
    assert after['rabbitmq_channel_messages_acked'].value() == 4
    assert after['rabbitmq_global_messages_delivered_get_manual_ack'].value() == 4
    assert after['rabbitmq_global_messages_routed'].value() == 10
    for name in ('rabbitmq_connections_opened', 'rabbitmq_connections_closed',
                 'rabbitmq_channels_opened', 'rabbitmq_queues_created'):
        assert after[name].value() == before[name].value() + 1, name
    assert after['rabbitmq_queues'].value() == 1
    assert after['rabbitmq_process_resident_memory_bytes'].value() > 10_000_000
    assert after['rabbitmq_process_open_fds'].value() > 3


def test_the_summed_queue_families_add_up_every_queue(broker, unique):
    """/metrics adds the queues up without a row each; its sums are the
    per-object series added up."""
    base = f'http://127.0.0.1:{broker.metrics_port}/metrics'
    names = [f'{unique}.{i}' for i in range(3)]
    with pika.BlockingConnection(pika.URLParameters(broker.url)) as conn:
        ch = conn.channel()
        for i, name in enumerate(names):
            ch.queue_declare(name)
            for _ in range(i + 1):
                ch.basic_publish('', name, b'abcd')
        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(names[2], lambda *args: None)
        wait_until(lambda: parse(scrape(base + '/per-object'))[
            'rabbitmq_queue_messages_unacked'].value(queue=names[2]) == 1)
        per_object, summed = parse(scrape(base + '/per-object')), parse(scrape(base))
        for family in ('rabbitmq_queue_messages_ready', 'rabbitmq_queue_messages_unacked',
                       'rabbitmq_queue_messages', 'rabbitmq_queue_messages_bytes',
                       'rabbitmq_queue_consumers', 'rabbitmq_queue_messages_published'):
            total = sum(value for _, _, value in per_object[family].samples)
            assert summed[family].value() == total, family
        assert per_object['rabbitmq_queue_messages_ready'].value(queue=names[2]) == 2
        assert summed['rabbitmq_queues'].value() == len(
            per_object['rabbitmq_queue_messages_ready'].samples)
        assert summed['rabbitmq_consumers'].value() >= 1
        for name in names:
            ch.queue_delete(name)


def test_gzip_when_asked_and_rabbitmqs_404_elsewhere(broker):
    base = f'http://127.0.0.1:{broker.metrics_port}'
    status, headers, body = get(base + '/metrics', {'Accept-Encoding': 'gzip'})
    assert status == 200 and headers['Content-Encoding'] == 'gzip'
    assert body[:2] == b'\x1f\x8b'
    status, _, body = get(base + '/metrics/nope')
    assert status == 404
    assert body == b'{"error":"Object Not Found","reason":"Not Found"}'


def test_the_off_switch(fresh_broker):
    fresh_broker.extra_env = {'LEVERET_PROMETHEUS_ENABLED': 'false'}
    broker = fresh_broker.start()
    assert broker.metrics_port == 0
    assert 'Prometheus' not in broker.log()


def test_a_failing_collector_answers_500_and_the_broker_goes_on(tmp_path, monkeypatch,
                                                              caplog):
    def broken(*args: object) -> None:
        raise RuntimeError('collector bug')

    async def scenario() -> None:
        settings = Settings(port=0, prometheus_port=0, management_port=0, data_dir=tmp_path)
        broker = Broker(settings, store=MemoryStore())
        await broker.start()
        try:
            assert broker.exporter is not None
            url = f'http://127.0.0.1:{broker.exporter.port}/metrics'
            loop = asyncio.get_running_loop()
            monkeypatch.setattr(exporter, 'families', broken)
            status, _, _ = await loop.run_in_executor(None, get, url)
            assert status == 500
            monkeypatch.undo()
            async with await aio_pika.connect(
                    f'amqp://guest:guest@127.0.0.1:{broker.port}/') as conn:
                channel = await conn.channel()
                queue = await channel.declare_queue('after-the-failure')
                await channel.default_exchange.publish(aio_pika.Message(b'still here'),
                                                       'after-the-failure')
                message = await queue.get(timeout=5)
                assert message.body == b'still here'
                status, _, body = await loop.run_in_executor(None, get, url)
                assert status == 200 and b'rabbitmq_queues 1.0' in body
        finally:
            await broker.stop()

    with caplog.at_level(logging.ERROR, logger='leveret.broker.metrics.exporter'):
        asyncio.run(scenario())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and 'metrics collection failed' in errors[0].getMessage()
    assert errors[0].exc_info and 'collector bug' in str(errors[0].exc_info[1])
