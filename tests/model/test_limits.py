"""x-max-length and x-max-length-bytes with each x-overflow mode."""

from __future__ import annotations

from .fakes import cost, headers_of, make_vhost, publish


def test_drop_head_drops_the_oldest_messages():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-length': 2})
    for body in (b'1', b'2', b'3'):
        assert publish(vhost, '', 'q', body) == [True]
    assert [m.body for m in queue.ready] == [b'2', b'3']
    assert vhost.memory.held == cost(b'2', b'3')


def test_max_length_bytes_counts_bodies():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-length-bytes': 10})
    for body in (b'aaaa', b'bbbb', b'cccc'):
        publish(vhost, '', 'q', body)
    assert [m.body for m in queue.ready] == [b'bbbb', b'cccc']
    publish(vhost, '', 'q', b'x' * 11)      # larger than the whole limit: dropped too
    assert queue.message_count == 0


def test_reject_publish_refuses_new_messages():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-length': 1,
                                                      'x-overflow': 'reject-publish'})
    assert publish(vhost, '', 'q', b'1') == [True]
    assert publish(vhost, '', 'q', b'2') == [False]
    assert [m.body for m in queue.ready] == [b'1']
    assert vhost.memory.held == cost(b'1')


def test_reject_publish_dlx_dead_letters_the_refused_message():
    vhost, _ = make_vhost()
    dead = vhost.declare_queue('dead', None)
    vhost.declare_queue('q', None, arguments={
        'x-max-length': 1, 'x-overflow': 'reject-publish-dlx',
        'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dead'})
    publish(vhost, '', 'q', b'1')
    assert publish(vhost, '', 'q', b'2') == [False]
    [m] = list(dead.ready)
    assert m.body == b'2'
    assert headers_of(m)['x-death'][0]['reason'] == 'maxlen'


def test_drop_head_dead_letters_what_it_drops():
    vhost, _ = make_vhost()
    dead = vhost.declare_queue('dead', None)
    vhost.declare_queue('q', None, arguments={
        'x-max-length': 1, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dead'})
    publish(vhost, '', 'q', b'1')
    publish(vhost, '', 'q', b'2')
    assert [m.body for m in dead.ready] == [b'1']
