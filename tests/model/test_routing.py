"""Routing: exchange types, exchange-to-exchange bindings, alternate exchanges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leveret.protocol.errors import AccessRefused, PreconditionFailed

from .fakes import make_vhost, message


def routed(vhost, exchange, routing_key, **props):
    return sorted(q.name for q in vhost.route(vhost.exchange(exchange), routing_key,
                                              message(b'm', exchange, routing_key, **props)))


def test_topic_patterns_match_words():
    vhost, _ = make_vhost()
    x = vhost.exchange('amq.topic')
    for name, key in (('star', 'a.*.c'), ('hash', 'a.#'), ('exact', 'a.b.c'), ('all', '#')):
        vhost.bind(x, vhost.declare_queue(name, None), key)
    assert routed(vhost, 'amq.topic', 'a.b.c') == ['all', 'exact', 'hash', 'star']
    assert routed(vhost, 'amq.topic', 'a') == ['all', 'hash']
    assert routed(vhost, 'amq.topic', 'b.b.c') == ['all']


def topic_matches(pattern: list[str], words: list[str]) -> bool:
    """The reference: '*' one word, '#' zero or more (exponential, fine when small)."""
    if not pattern:
        return not words
    first, rest = pattern[0], pattern[1:]
    if first == '#':
        return any(topic_matches(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and first in ('*', words[0]) and topic_matches(rest, words[1:])


topic_words = st.sampled_from(['a', 'b', '*', '#', ''])
key_words = st.sampled_from(['a', 'b', '*', ''])


@settings(max_examples=300)
@given(st.lists(st.lists(topic_words, min_size=1, max_size=5), min_size=1, max_size=6),
       st.lists(key_words, min_size=1, max_size=6))
def test_topic_routing_matches_the_reference(patterns, key):
    vhost, _ = make_vhost()
    x = vhost.exchange('amq.topic')
    for i, pattern in enumerate(patterns):
        vhost.bind(x, vhost.declare_queue(f'q{i}', None), '.'.join(pattern))
    expected = sorted(f'q{i}' for i, pattern in enumerate(patterns)
                      if topic_matches(pattern, key))
    assert routed(vhost, 'amq.topic', '.'.join(key)) == expected


def test_many_hashes_and_a_long_key_match_in_polynomial_time():
    vhost, _ = make_vhost()
    x = vhost.exchange('amq.topic')
    vhost.bind(x, vhost.declare_queue('z', None), '#.#.#.#.#.#.#.#.z')
    vhost.bind(x, vhost.declare_queue('y', None), '#.#.#.#.#.#.#.#.y')
    key = '.'.join(['w'] * 120)
    assert routed(vhost, 'amq.topic', key) == []          # was 2^n split points
    assert routed(vhost, 'amq.topic', key + '.z') == ['z']


def test_headers_exchange_matches_all_or_any():
    vhost, _ = make_vhost()
    x = vhost.exchange('amq.headers')
    vhost.bind(x, vhost.declare_queue('all', None), '', {'x-match': 'all', 'a': 1, 'b': 2})
    vhost.bind(x, vhost.declare_queue('any', None), '', {'x-match': 'any', 'a': 1, 'b': 2})
    assert routed(vhost, 'amq.headers', '', headers={'a': 1, 'b': 2}) == ['all', 'any']
    assert routed(vhost, 'amq.headers', '', headers={'a': 1}) == ['any']
    with pytest.raises(PreconditionFailed, match='Invalid x-match field value'):
        vhost.bind(x, vhost.queues['all'], '', {'x-match': 'some'})


def test_exchange_to_exchange_bindings_and_alternate_exchanges():
    vhost, _ = make_vhost()
    vhost.declare_exchange('unrouted', 'fanout')
    vhost.declare_exchange('front', 'direct', arguments={'alternate-exchange': 'unrouted'})
    vhost.bind(vhost.exchange('unrouted'), vhost.declare_queue('lost', None), '')
    vhost.bind(vhost.exchange('front'), vhost.exchange('amq.fanout'), 'fan')
    vhost.bind(vhost.exchange('amq.fanout'), vhost.declare_queue('fanned', None), '')
    assert routed(vhost, 'front', 'fan') == ['fanned']
    assert routed(vhost, 'front', 'other') == ['lost']


def test_the_default_exchange_routes_by_queue_name_and_cannot_be_bound():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    assert routed(vhost, '', 'q') == ['q']
    assert routed(vhost, '', 'nope') == []
    with pytest.raises(AccessRefused):
        vhost.bind(vhost.exchange(''), queue, 'q')


def test_deleting_a_queue_removes_its_bindings_and_only_those():
    vhost, _ = make_vhost()
    exchange = vhost.declare_exchange('x', 'direct')
    queues = [vhost.declare_queue(f'q{i}', None) for i in range(5)]
    for queue in queues:
        vhost.bind(exchange, queue, 'k')
        vhost.bind(exchange, queue, queue.name)
    vhost.delete_queue(queues[2])
    assert exchange.bindings_to(queues[2]) == []
    assert sorted(q.name for q in exchange.route('k', None)) == ['q0', 'q1', 'q3', 'q4']
    assert exchange.bindings_to(queues[3]) == [('k', {}), ('q3', {})]
    assert len(exchange.bindings) == 8
