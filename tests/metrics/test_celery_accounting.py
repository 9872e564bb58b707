"""The Celery accounting's bound on task names and its off switch, with
task messages published by pika as any Celery-protocol client sends them."""

from __future__ import annotations

import pika

from ..processes import wait_until
from .scrape import parse, scrape


def publish_tasks(url: str, queue: str, names: list[str]) -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        ch = conn.channel()
        ch.queue_declare(queue)
        for i, name in enumerate(names):
            ch.basic_publish('', queue, b'[[], {}, {}]', pika.BasicProperties(
                content_type='application/json',
                headers={'lang': 'py', 'task': name, 'id': f'id-{i}', 'retries': 0}))
        ch.basic_publish('', queue, b'not a task', pika.BasicProperties(headers={'x': 1}))


def published(url: str) -> dict[str, float]:
    family = parse(scrape(url))['leveret_celery_task_published']
    return {labels['task']: value for _, labels, value in family.samples}


def test_names_past_the_bound_are_counted_as_other(fresh_broker, unique):
    fresh_broker.extra_env = {'LEVERET_CELERY_TASK_NAMES': '2'}
    broker = fresh_broker.start()
    publish_tasks(broker.url, unique, ['a.one', 'a.two', 'a.three', 'a.four', 'a.one'])
    counts = wait_until(lambda: published(broker.metrics_url) or None)
    assert counts == {'a.one': 2, 'a.two': 1, 'other': 2}
    families = parse(scrape(broker.metrics_url))
    assert families['leveret_celery_task_names'].value() == 2
    assert families['leveret_celery_task_names_limit'].value() == 2
    assert families['leveret_celery_task_names_overflowed'].value() == 2
    assert families['leveret_celery_tasks_waiting'].value(task='other') == 2


def test_the_accounting_off_reads_no_header(fresh_broker, unique):
    fresh_broker.extra_env = {'LEVERET_CELERY_ACCOUNTING': 'false'}
    broker = fresh_broker.start()
    publish_tasks(broker.url, unique, ['a.one', 'a.two'])
    families = parse(scrape(broker.metrics_url + '/per-object'))
    assert families['rabbitmq_queue_messages_ready'].value(queue=unique) == 3
    assert families['leveret_celery_task_published'].samples == []
    assert families['leveret_celery_task_names'].value() == 0
