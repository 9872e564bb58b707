"""The worker's hand-packed frames are pamqp's bytes, and acks are coalesced
only over deliveries that are really done."""

from __future__ import annotations

import asyncio

import pytest
from pamqp import commands as C
from pamqp import frame as pframe

from leveret.client.worker import frames


def test_ack_and_reject_frames_are_pamqps():
    assert frames.ack(3, 2**40 + 7, multiple=True) == \
        pframe.marshal(C.Basic.Ack(delivery_tag=2**40 + 7, multiple=True), 3)
    assert frames.ack(1, 5) == pframe.marshal(C.Basic.Ack(delivery_tag=5), 1)
    assert frames.reject(2, 9, requeue=False) == \
        pframe.marshal(C.Basic.Reject(delivery_tag=9, requeue=False), 2)


@pytest.mark.parametrize('size', [0, 10, 131064, 300000])
def test_a_result_publish_reads_back_as_celerys_result(size):
    body = bytes(range(256)) * (size // 256) + b'x' * (size % 256)
    packed = frames.publish(1, '', 'reply-queue', frames.result_properties('task-id'),
                            frames.RESULT_FLAGS, body, 131064)
    decoded = []
    while packed:
        used, channel, frame = pframe.unmarshal(packed)
        assert channel == 1
        decoded.append(frame)
        packed = packed[used:]
    method, header, *bodies = decoded
    assert pframe.marshal(method, 1) == \
        pframe.marshal(C.Basic.Publish(exchange='', routing_key='reply-queue'), 1)
    assert header.body_size == size
    props = header.properties
    assert (props.content_type, props.content_encoding, props.delivery_mode, props.priority,
            props.correlation_id) == ('application/json', 'utf-8', 1, 0, 'task-id')
    assert not props.headers
    assert [len(b.value) for b in bodies] == \
        [min(131064, size - i) for i in range(0, size, 131064)]
    assert b''.join(b.value for b in bodies) == body


def test_result_properties_carry_celerys_flags():
    # Celery's rpc results: flags 0xfc00, with an empty headers table present.
    method = pframe.marshal(C.Basic.Publish(exchange='', routing_key='q'), 1)
    packed = frames.publish(1, '', 'q', frames.result_properties('id'), frames.RESULT_FLAGS,
                            b'{}', 131064)
    header = packed[len(method):]
    assert header[:1] == b'\x02'
    payload = header[7:]
    assert payload[12:14] == b'\xfc\x00'
    assert payload[14:].startswith(b'\x10application/json\x05utf-8\x00\x00\x00\x00\x01\x00\x02id')


class Recorder:
    """Stands in for the consumer connection: what was queued, and what was
    handed to the socket (``sent``)."""

    def __init__(self) -> None:
        self.queued: list[tuple] = []
        self.sent: list[tuple] = []

    def ack(self, tag, multiple=False):
        self.queued.append(('ack', tag, multiple))

    def reject(self, tag, requeue):
        self.queued.append(('reject', tag, requeue))

    def write_queued(self):
        self.sent += self.queued
        self.queued = []


def _settle(operations):
    async def run():
        writer = Recorder()
        settler = frames.Settler(writer)  # type: ignore[arg-type]
        for op, *args in operations:
            getattr(settler, op)(*args)
        settler.flush()
        writer.write_queued()  # the end of the loop turn: a reject goes out then
        return writer.sent
    return asyncio.run(run())


def test_acks_of_a_prefix_become_one_multiple_ack():
    assert _settle([('delivered', 1), ('delivered', 2), ('delivered', 3),
                    ('ack', 2), ('ack', 1)]) == [('ack', 2, True)]


def test_an_ack_behind_a_held_delivery_goes_alone():
    sent = _settle([('delivered', 1), ('delivered', 2), ('delivered', 3),
                    ('ack', 2), ('ack', 3)])
    assert sent == [('ack', 2, False), ('ack', 3, False)]


def test_rejected_and_single_acked_deliveries_do_not_block_the_prefix():
    sent = _settle([('delivered', 1), ('delivered', 2), ('delivered', 3), ('delivered', 4),
                    ('ack', 2), ('reject', 3, True), ('ack', 1), ('ack', 4)])
    # 2 alone (1 was held), then 3 rejected; then 1 and 4 close the prefix.
    assert sent == [('ack', 2, False), ('reject', 3, True), ('ack', 4, True)]



def _settle_waiting(may_wait, tags, acks):
    """Acks with ``may_wait``; what was written at once, a loop turn later,
    and once ACK_DELAY had passed."""
    async def run():
        writer = Recorder()
        settler = frames.Settler(writer, may_wait)  # type: ignore[arg-type]
        for tag in tags:
            settler.delivered(tag)
        seen = []
        for tag in acks:
            settler.ack(tag)
        seen.append(list(writer.sent))
        await asyncio.sleep(0)
        seen.append(list(writer.sent))
        await asyncio.sleep(settler.ACK_DELAY * 5)
        seen.append(list(writer.sent))
        return seen
    return asyncio.run(run())


def test_acks_go_out_together_at_the_end_of_the_loop_turn():
    assert _settle_waiting(lambda pending: False, (1, 2), (1, 2)) == \
        [[], [('ack', 2, True)], [('ack', 2, True)]]


def test_acks_allowed_to_wait_go_out_after_the_delay():
    assert _settle_waiting(lambda pending: True, (1, 2, 3), (1, 2)) == \
        [[], [], [('ack', 2, True)]]


def test_an_ack_that_may_not_wait_takes_the_waiting_ones_along_this_turn():
    # The first may wait, the second may not (say no task is ready any more).
    assert _settle_waiting(lambda pending: pending < 2, (1, 2, 3), (1, 2)) == \
        [[], [('ack', 2, True)], [('ack', 2, True)]]


def test_acks_wait_only_while_tasks_are_ready_and_within_half_the_prefetch():
    from leveret.client.worker.state import WorkerState

    state = WorkerState(8)
    assert not state.acks_may_wait(1)  # nothing ready: the broker's deliveries are wanted
    state.ready.append(object())  # type: ignore[arg-type]
    assert state.acks_may_wait(3)
    assert not state.acks_may_wait(4)
    assert not WorkerState(1).acks_may_wait(1)
    unlimited = WorkerState(0)
    unlimited.ready.append(object())  # type: ignore[arg-type]
    assert unlimited.acks_may_wait(1000)
