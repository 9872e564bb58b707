"""Deleting queues: subscribers cancelled, exclusive queues of an owner, auto-delete."""

from __future__ import annotations

import pytest

from leveret.protocol.errors import PreconditionFailed, ResourceLocked

from .fakes import Subscriber, make_vhost, publish


class Owner:
    """A connection, as the owner of exclusive queues."""


def test_deleting_a_queue_cancels_its_subscribers_and_frees_its_messages():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumer = Subscriber(queue, prefetch=1).subscribe()
    publish(vhost, '', 'q', b'1')
    publish(vhost, '', 'q', b'2')
    assert vhost.delete_queue(queue) == 1
    assert consumer.cancelled
    assert 'q' not in vhost.queues
    consumer.ack()                  # the delivered one is settled by its ack
    assert vhost.memory.held == 0


def test_delete_if_unused_and_if_empty_refuse_with_406():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    Subscriber(queue, prefetch=0).subscribe()
    with pytest.raises(PreconditionFailed, match="queue 'q' in vhost '/' in use"):
        vhost.delete_queue(queue, if_unused=True)
    publish(vhost, '', 'q', b'1')
    with pytest.raises(PreconditionFailed, match='is not empty'):
        vhost.delete_queue(queue, if_empty=True)


def test_an_exclusive_queue_belongs_to_its_owner_and_goes_with_it():
    vhost, _ = make_vhost()
    owner, other = Owner(), Owner()
    queue = vhost.declare_queue('mine', owner, exclusive=True)
    assert vhost.queue('mine', owner) is queue
    with pytest.raises(ResourceLocked):
        vhost.queue('mine', other)
    with pytest.raises(ResourceLocked):
        vhost.declare_queue('mine', other, exclusive=True)
    vhost.owner_gone(other)
    assert 'mine' in vhost.queues
    vhost.owner_gone(owner)
    assert 'mine' not in vhost.queues and queue.deleted


def test_an_exclusive_queue_deleted_first_is_not_deleted_again_with_its_owner():
    vhost, _ = make_vhost()
    owner = Owner()
    queue = vhost.declare_queue('mine', owner, exclusive=True)
    vhost.delete_queue(queue)
    again = vhost.declare_queue('mine', None)
    vhost.owner_gone(owner)
    assert vhost.queues['mine'] is again


def test_an_auto_delete_queue_goes_when_its_last_consumer_leaves():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None, auto_delete=True)
    a, b = Subscriber(queue).subscribe(), Subscriber(queue).subscribe()
    queue.remove_consumer(a)
    assert 'q' in vhost.queues
    queue.remove_consumer(b)
    assert 'q' not in vhost.queues


def test_bindings_of_a_deleted_queue_go_and_an_auto_delete_exchange_with_them():
    vhost, _ = make_vhost()
    exchange = vhost.declare_exchange('x', 'topic', auto_delete=True)
    queue = vhost.declare_queue('q', None)
    vhost.bind(exchange, queue, 'a.*')
    assert publish(vhost, 'x', 'a.b', b'1') == [True]
    vhost.delete_queue(queue)
    assert 'x' not in vhost.exchanges
