"""The store interface the model is written against.

The store sits beneath the model: it never imports queues, vhosts or
messages.  What it reads of them is named here, :class:`StoredQueue` and
:class:`StoredMessage`, and the model's ``Queue`` and ``Message`` satisfy
these protocols structurally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .records import Published


class StoreFailed(Exception):
    """Persistent messages cannot be written right now."""


@dataclass
class Definitions:
    """What a restart must recreate, as plain data: vhosts, users and
    permissions, durable exchanges, queues and bindings (one list per kind,
    each item a dict)."""

    vhosts: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    permissions: list[dict[str, Any]] = field(default_factory=list)
    topic_permissions: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    #: Read from the old whole-file format (``definitions.json``).
    legacy: bool = False

    #: The kinds, in the order a restore recreates them.
    KINDS = ('vhosts', 'users', 'permissions', 'topic_permissions', 'exchanges', 'queues',
             'bindings')


@dataclass
class Recovered:
    """What start-up recovery found."""

    clean: bool = True        # the previous run stopped cleanly
    messages: int = 0
    dropped: int = 0          # records of queues that no longer exist
    quarantined: int = 0      # records that could not be read, moved aside
    cut_bytes: int = 0        # torn or corrupt tails cut off
    seconds: float = 0.0


class StoredQueue(Protocol):
    """A durable queue as the store knows it."""

    #: How records name the queue: vhost, name and incarnation
    #: (:func:`~.records.queue_key`).
    store_key: bytes


class StoredMessage(Protocol):
    """A persistent message as the store reads and writes it."""

    #: Identity in the store (``segment << 32 | index``), 0 when not stored;
    #: set by :meth:`Store.add`, cleared by :meth:`Store.remove`.
    store_id: int
    seq: int
    delivery_count: int
    #: Monotonic deadline in seconds, 0.0 for none.
    expires_at: float
    exchange_and_key: bytes
    header: bytes
    body: bytes


#: Every stored message the broker holds: ``(queue, message, out)`` where
#: ``out`` is True while the message is delivered and unacked.
LiveMessages = Callable[[], Iterable[tuple[StoredQueue, StoredMessage, bool]]]

#: Called by :meth:`Store.recover` once per queue key with that queue's
#: records in queue order.  Returns None when no such queue exists any
#: more, else the records it could not take, each with the reason (they are
#: moved to the quarantine file).
RestoreQueue = Callable[[bytes, 'list[Published]'], 'list[tuple[Published, str]] | None']


class Store(Protocol):
    #: False for a store that keeps nothing: queues then skip every call.
    persistent: bool
    #: The error that stopped writes, or None.
    failed: OSError | None

    def open(self) -> None:
        """Lock the data directory (before anything else touches it)."""

    def attach(self, loop: Any, live_messages: LiveMessages) -> None:
        """Start writing from ``loop``; ``live_messages`` lists stored messages
        (compaction moves them)."""

    def recover(self, restore: RestoreQueue) -> Recovered:
        """Read the stored messages back, handing each queue's to ``restore``."""

    def delivered(self, message: StoredMessage) -> None:
        """A stored message went out to a consumer once more."""

    def confirm_failed(self, position: int) -> bool:
        """True if a confirm waiting for ``position`` can never succeed."""

    def add(self, queue: StoredQueue, message: StoredMessage) -> None:
        """A persistent message entered a durable queue; sets ``store_id``.

        Raises :class:`StoreFailed` while writes fail."""

    def remove(self, queue: StoredQueue, message: StoredMessage) -> None:
        """The message left the queue for good (acked, dropped, expired)."""

    def write_position(self) -> int:
        """A counter of writes so far; confirms wait until it is synced."""

    def synced_position(self) -> int:
        """Every write up to this position is on disk."""

    def when_synced(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the current write position is synced."""

    def save_definition(self, key: str, value: dict[str, Any]) -> None:
        """Record one item of the definitions (its key starts with its kind,
        one of :attr:`Definitions.KINDS`); written with the next batch."""

    def drop_definition(self, key: str) -> None:
        """Forget one item of the definitions."""

    def replace_definitions(self, items: dict[str, dict[str, Any]]) -> None:
        """Make the saved definitions exactly ``items`` (what changed is written)."""

    def load_definitions(self) -> Definitions | None:
        """The definitions saved last, or None on a first start."""

    def close(self) -> None:
        """Flush and release files."""
