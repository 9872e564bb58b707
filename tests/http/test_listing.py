"""List options: pages, name filters, sorting and columns, as RabbitMQ."""

from __future__ import annotations

import pytest

from .client import Api


@pytest.fixture
def queues(own_api: Api) -> Api:
    for name, count in (('q.args', 3), ('q.autodelete', 0), ('q.classic', 5), ('q.dead', 1),
                        ('other', 2)):
        assert own_api.put(f'/queues/%2F/{name}', {}).status == 201
        for _ in range(count):
            own_api.post('/exchanges/%2F/amq.default/publish', {
                'properties': {}, 'routing_key': name, 'payload': 'x',
                'payload_encoding': 'string'})
    return own_api


def test_pages(queues):
    page = queues.get('/queues?page=2&page_size=2')
    assert {k: v for k, v in page.items() if k != 'items'} == {
        'filtered_count': 5, 'item_count': 2, 'page': 2, 'page_count': 3, 'page_size': 2,
        'total_count': 5}
    assert [q['name'] for q in page['items']] == ['q.autodelete', 'q.classic']



def test_page_size_is_100_unless_asked_and_at_most_500(queues):
    assert queues.get('/queues?page=1')['page_size'] == 100
    assert queues.get('/queues?page=1&page_size=500')['page_size'] == 500
    assert queues('GET', '/queues?page=1&page_size=501').status == 400

def test_name_filters_substring_or_regex_and_only_with_a_page(queues):
    page = queues.get('/queues?page=1&page_size=100&name=classic&use_regex=false')
    assert [q['name'] for q in page['items']] == ['q.classic']
    page = queues.get('/queues?page=1&page_size=100&name=%5Eq%5C.%28a%7Cc%29&use_regex=true')
    assert [q['name'] for q in page['items']] == ['q.args', 'q.autodelete', 'q.classic']
    assert (page['filtered_count'], page['total_count']) == (3, 5)
    assert len(queues.get('/queues?name=classic')) == 5       # no page: no filter


def test_sorting(queues):
    by_messages = queues.get('/queues?sort=messages&sort_reverse=true')
    assert [q['messages'] for q in by_messages] == [5, 3, 2, 1, 0]
    by_name = queues.get('/queues?sort=name')
    assert [q['name'] for q in by_name] == sorted(q['name'] for q in by_name)
    page = queues.get('/queues?page=1&page_size=3&sort=messages&sort_reverse=true')
    assert [q['name'] for q in page['items']] == ['q.classic', 'q.args', 'other']


def test_columns_keep_only_the_named_fields_sorted(queues):
    rows = queues.get('/queues?columns=name,messages,message_stats.publish_details.rate')
    assert rows[0] == {'message_stats': {'publish_details': {'rate': 0.0}}, 'messages': 2,
                       'name': 'other'}
    assert list(rows[0]) == ['message_stats', 'messages', 'name']
    assert queues.get('/queues?columns=name')[1] == {'name': 'q.args'}
    page = queues.get('/queues?page=1&page_size=2&columns=name,messages')
    assert page['items'] == [{'messages': 2, 'name': 'other'}, {'messages': 3, 'name': 'q.args'}]
    overview = queues.get('/overview?columns=rabbitmq_version,cluster_name,'
                          'queue_totals.messages,object_totals.queues')
    assert list(overview) == ['cluster_name', 'object_totals', 'queue_totals',
                              'rabbitmq_version']
    assert overview['queue_totals']['messages'] == 11
    assert 'messages_ready' in overview['queue_totals']     # the whole top-level field
