"""The broker's model: virtual hosts, exchanges, queues and their messages.

Synchronous and deterministic: no asyncio, no sockets, nothing of
connections or channels.  What the model needs from the layer above is
named in :mod:`.ports` (a subscriber, a publisher, an owner of exclusive
queues); time comes from a :class:`~.clock.Clock` and durability from a
:class:`~leveret.broker.store.base.Store`, so tests drive it in process
with :class:`~.clock.ManualClock` and
:class:`~leveret.broker.store.memory.MemoryStore`.
"""
