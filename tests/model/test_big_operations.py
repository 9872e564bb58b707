"""Big operations go a slice per loop turn, and nothing is lost between slices:
a requeue, a purge and a deletion of more than SLICE messages; many
consumers joining and leaving without a walk over all of them."""

from __future__ import annotations

from leveret.broker.model.queue import SLICE
from leveret.broker.recovery import live_messages

from .fakes import Subscriber, cost, make_vhost, publish

MANY = 2 * SLICE + 7


def fill(count: int = MANY):
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None)
    for i in range(count):
        publish(vhost, '', 'q', str(i).encode())
    return vhost, clock, queue


def test_a_big_requeue_goes_back_in_slices_and_in_order():
    vhost, clock, queue = fill()
    consumer = Subscriber(queue).subscribe()     # takes everything, acks nothing
    queue.remove_consumer(consumer)
    consumer.requeue()
    assert queue.message_count == MANY           # counted while they go back
    assert len(queue.ready) < MANY               # one slice at most went back at once
    clock.advance(0)
    assert len(queue.ready) == MANY and not queue.returning
    assert [m.body for m in queue.ready] == [str(i).encode() for i in range(MANY)]
    assert all(m.redelivered and m.delivery_count == 1 for m in queue.ready)


def test_taking_messages_during_a_big_requeue_keeps_the_order():
    vhost, clock, queue = fill()
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    publish(vhost, '', 'q', b'newer')
    taken = [queue.get().body for _ in range(SLICE + 1)]    # past the first slice
    assert taken == [str(i).encode() for i in range(SLICE + 1)]
    clock.advance(0)
    rest = [m.body for m in queue.ready]
    assert rest == [str(i).encode() for i in range(SLICE + 1, MANY)] + [b'newer']


def fill_by_priority(count: int = MANY):
    """A priority queue of ``count`` messages, priorities 0-3 in turn (9 counts as 3)."""
    vhost, clock = make_vhost()
    queue = vhost.declare_queue('q', None, arguments={'x-max-priority': 3})
    for i in range(count):
        publish(vhost, '', 'q', str(i).encode(), priority=(0, 1, 9, 2)[i % 4])
    return vhost, clock, queue


def at_level(level: int, count: int = MANY) -> list[bytes]:
    """The bodies ``fill_by_priority`` put at ``level``, oldest first."""
    return [str(i).encode() for i in range(count) if (0, 1, 3, 2)[i % 4] == level]


def in_priority_order(count: int = MANY) -> list[bytes]:
    return [body for level in (3, 2, 1, 0) for body in at_level(level, count)]


def test_a_big_requeue_of_a_priority_queue_goes_back_in_slices_and_in_order():
    vhost, clock, queue = fill_by_priority()
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    assert queue.message_count == MANY
    assert len(queue.ready) <= SLICE             # one slice at most went back at once
    clock.advance(0)
    assert len(queue.ready) == MANY and not queue.returning
    assert [m.body for m in queue.ready] == in_priority_order()


def test_taking_from_a_priority_queue_during_a_big_requeue_keeps_the_order():
    vhost, clock, queue = fill_by_priority()
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    publish(vhost, '', 'q', b'newer-high', priority=3)
    publish(vhost, '', 'q', b'newer-low', priority=0)
    taken = [queue.get().body for _ in range(SLICE + 1)]    # past the first slice
    expected = (at_level(3) + [b'newer-high'] + at_level(2) + at_level(1) + at_level(0)
                + [b'newer-low'])
    assert taken == expected[:SLICE + 1]
    clock.advance(0)
    assert [m.body for m in queue.ready] == expected[SLICE + 1:]


def test_a_small_requeue_goes_back_at_once():
    vhost, clock, queue = fill(10)
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    assert len(queue.ready) == 10


def test_messages_going_back_are_live_for_the_store():
    vhost, clock, queue = fill(MANY)
    for message in queue.ready:
        message.store_id = 1            # as if persistent in a durable queue
    queue.persists = True
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    assert sum(1 for _ in live_messages([vhost], lambda: ())) == MANY


def test_a_big_purge_settles_in_slices():
    vhost, clock, queue = fill()
    assert queue.purge() == MANY
    assert queue.message_count == 0
    assert vhost.memory.held > 0                 # settled over the next turns
    clock.advance(0)
    assert vhost.memory.held == 0


def test_a_purge_during_a_big_requeue_takes_the_returning_messages_too():
    vhost, clock, queue = fill()
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    assert queue.purge() == MANY
    clock.advance(0)
    assert queue.message_count == 0 and vhost.memory.held == 0


def test_deleting_a_big_queue_during_a_requeue_frees_everything():
    vhost, clock, queue = fill()
    consumer = Subscriber(queue).subscribe()
    queue.remove_consumer(consumer)
    consumer.requeue()
    vhost.delete_queue(queue)
    clock.advance(0)
    assert vhost.memory.held == 0


def test_finishing_the_slices_does_the_rest_at_once():
    vhost, clock, queue = fill()
    queue.purge()
    queue.finish_slices()
    assert vhost.memory.held == 0
    clock.advance(0)                             # nothing left to run
    assert vhost.memory.held == 0


def test_many_consumers_leave_in_one_pass_and_keep_the_bookkeeping():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    low = [Subscriber(queue, prefetch=1, name=f'low{i}').subscribe() for i in range(50)]
    high = Subscriber(queue, prefetch=1, priority=5, name='high').subscribe()
    queue.remove_consumers([high])
    assert queue.consumer_count == 50
    publish(vhost, '', 'q', b'm')
    assert low[0].bodies() == [b'm']             # round robin again, no priority left
    queue.remove_consumers(low[:25])
    assert queue.consumers == low[25:]
    queue.remove_consumers(low[25:])
    assert queue.consumer_count == 0 and vhost.memory.held == cost(b'm')


def test_an_exclusive_consumer_is_counted_until_it_goes():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    only = Subscriber(queue, exclusive=True).subscribe()
    assert queue.has_exclusive_consumer()
    queue.remove_consumer(only)
    assert not queue.has_exclusive_consumer()


class Counting(Subscriber):
    """A subscriber that counts how often the queue asks it for credit."""

    asked = 0

    def has_credit(self) -> bool:
        Counting.asked += 1
        return super().has_credit()


def test_with_every_consumer_busy_a_publish_asks_none_of_them():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumers = [Counting(queue, prefetch=1).subscribe() for _ in range(1000)]
    for _ in range(1000):
        publish(vhost, '', 'q', b'm')
    assert all(len(c.unacked) == 1 for c in consumers)
    publish(vhost, '', 'q', b'waits')                  # the first finds everyone busy
    Counting.asked = 0
    for _ in range(100):
        publish(vhost, '', 'q', b'waits')
    assert Counting.asked == 0
    assert queue.message_count == 101


def test_the_consumer_that_acked_gets_the_next_message_without_a_walk():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumers = [Counting(queue, prefetch=1).subscribe() for _ in range(1000)]
    for _ in range(1100):
        publish(vhost, '', 'q', b'm')
    acker = consumers[500]
    Counting.asked = 0
    [message] = acker._take(1)                          # an ack, as the channel does it:
    queue.settle(message)                               # settle, then drain naming
    queue.drain(credit_from=[acker])                    # the consumer given credit
    assert len(acker.delivered) == 2
    assert Counting.asked < 10
    queue.drain()                                       # credit from anywhere: everyone asked
    assert Counting.asked > 1000


def test_a_consumer_with_credit_left_gets_the_next_publish():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumer = Subscriber(queue, prefetch=2).subscribe()
    for _ in range(3):
        publish(vhost, '', 'q', b'm')                   # two delivered, one waits: busy
    [message] = consumer._take(1)
    queue.settle(message)
    queue.drain(credit_from=[consumer])                 # takes the waiting one
    for message in consumer._take(None):                # acked: credit for two,
        queue.settle(message)                           # nothing ready
    queue.drain(credit_from=[consumer])
    publish(vhost, '', 'q', b'next')
    assert consumer.bodies()[-1] == b'next'


def test_an_ack_after_a_get_emptied_the_queue_lets_the_next_publish_through():
    vhost, _ = make_vhost()
    queue = vhost.declare_queue('q', None)
    consumer = Subscriber(queue, prefetch=1).subscribe()
    publish(vhost, '', 'q', b'1')
    publish(vhost, '', 'q', b'2')                       # waits: the consumer is busy
    assert queue.get().body == b'2'                     # nothing waits now
    [message] = consumer._take(1)
    queue.settle(message)
    queue.drain(credit_from=[consumer])                 # the ack, with nothing ready
    publish(vhost, '', 'q', b'3')
    assert consumer.bodies() == [b'1', b'3']
