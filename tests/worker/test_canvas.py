"""The messages a finished task sends on (retry, chain, callbacks): pure
functions from its message to theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leveret.client.messages import make_task_message, parse_iso
from leveret.client.worker import canvas
from leveret.client.worker.execute import RetryPlan

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def parent(**options):
    options.setdefault('reply_to', 'replies')
    return make_task_message('proj.add', (1, 2), {'z': 3}, task_id='parent-id',
                             root_id='root-id', **options)


def test_a_retry_is_the_same_task_once_more_at_the_plans_eta():
    message = parent(retries=1, priority=4, time_limit=30, soft_time_limit=20,
                     group_id='g', expires=NOW + timedelta(hours=1))
    message.properties.correlation_id = 'caller-cid'
    eta = (NOW + timedelta(seconds=90)).isoformat()
    out = canvas.retry_message(message, RetryPlan(eta=eta), exchange='tasks',
                               routing_key='math', hostname='w@h')
    retry = out.message
    assert (out.exchange, out.routing_key) == ('tasks', 'math')  # where it came from
    assert (retry.id, retry.name, retry.args, retry.kwargs) == \
        ('parent-id', 'proj.add', [1, 2], {'z': 3})
    headers = retry.headers
    assert (headers.retries, headers.eta, headers.root_id, headers.group) == \
        (2, eta, 'root-id', 'g')
    assert headers.timelimit == [30, 20] and headers.origin == 'w@h'
    assert retry.expires == NOW + timedelta(hours=1)
    assert (retry.properties.priority, retry.properties.reply_to,
            retry.properties.correlation_id) == (4, 'replies', 'caller-cid')


def test_a_retry_takes_the_args_and_options_the_task_gave():
    plan = RetryPlan(eta=NOW.isoformat(), args=[7], kwargs={'k': 1},
                     options={'queue': 'slow', 'priority': 9, 'time_limit': 5})
    out = canvas.retry_message(parent(), plan, exchange='', routing_key='celery',
                               hostname='w@h')
    assert (out.exchange, out.routing_key) == ('', 'slow')
    assert (out.message.args, out.message.kwargs) == ([7], {'k': 1})
    assert out.message.properties.priority == 9
    assert out.message.headers.timelimit[0] == 5


def test_a_chain_sends_its_next_task_with_the_value_first_and_carries_the_rest():
    message = parent()
    message.embed.chain = [{'task': 'proj.third', 'args': [], 'kwargs': {}, 'options': {}},
                           {'task': 'proj.second', 'args': [10], 'kwargs': {'k': 1},
                            'options': {'queue': 'math', 'priority': 3}}]
    [out] = canvas.follow_ups(message, 3, hostname='w@h', default_queue='celery', now=NOW)
    nxt = out.message
    assert (nxt.name, nxt.args, nxt.kwargs) == ('proj.second', [3, 10], {'k': 1})
    assert (out.exchange, out.routing_key) == ('', 'math')
    assert (nxt.headers.parent_id, nxt.headers.root_id, nxt.headers.origin) == \
        ('parent-id', 'root-id', 'w@h')
    assert nxt.properties.priority == 3
    assert [s['task'] for s in nxt.embed.chain] == ['proj.third']
    assert message.embed.chain is not None and len(message.embed.chain) == 2  # untouched


def test_callbacks_follow_the_chain_immutable_ones_without_the_value():
    message = parent()
    message.embed.chain = [{'task': 'proj.next', 'args': [], 'options': {}}]
    message.embed.callbacks = [
        {'task': 'proj.log', 'args': ['done'], 'options': {}, 'immutable': True},
        {'task': 'proj.store', 'args': [], 'options': {'countdown': 60,
                                                       'exchange': {'name': 'ex'},
                                                       'routing_key': 'rk',
                                                       'link': [{'task': 'proj.after'}]}}]
    outs = list(canvas.follow_ups(message, 'v', hostname='w@h', default_queue='celery',
                                  now=NOW))
    assert [(o.message.name, o.message.args) for o in outs] == \
        [('proj.next', ['v']), ('proj.log', ['done']), ('proj.store', ['v'])]
    assert outs[1].message.embed.chain is None
    store = outs[2]
    assert (store.exchange, store.routing_key) == ('ex', 'rk')
    assert parse_iso(store.message.headers.eta) == NOW + timedelta(seconds=60)
    assert store.message.embed.callbacks == [{'task': 'proj.after'}]


def test_a_signature_without_a_queue_goes_to_the_default_queue():
    sig = {'task': 'proj.x', 'args': [], 'options': {'queue': {'name': 'named'}}}
    out = canvas.signature_message(sig, 1, parent(), [], hostname='w', default_queue='dq')
    assert out.routing_key == 'named'
    out = canvas.signature_message({'task': 'proj.x'}, 1, parent(), [], hostname='w',
                                   default_queue='dq')
    assert (out.exchange, out.routing_key, out.message.args) == ('', 'dq', [1])


def test_no_chain_and_no_callbacks_send_nothing():
    assert list(canvas.follow_ups(parent(), 1, hostname='w', default_queue='q')) == []
