"""The store interface the broker is written against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..message import Message
    from ..queue import Queue


@dataclass
class Definitions:
    """Durable topology, as plain data (what a restart must recreate)."""

    vhosts: list[str] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    bindings: list[dict[str, Any]] = field(default_factory=list)


class Store(Protocol):
    #: False for a store that keeps nothing: queues then skip every call.
    persistent: bool
    #: The error that stopped writes, or None.
    failed: OSError | None

    def open(self) -> None:
        """Lock the data directory (before anything else touches it)."""

    def attach(self, loop: Any, live_messages: Callable[[], Any]) -> None:
        """Start writing from ``loop``; ``live_messages`` lists stored messages."""

    def recover(self, find_queue: Callable[[bytes], Any],
                make_message: Callable[[Any, Any], 'Message']) -> Any:
        """Read the stored messages back into their queues."""

    def delivered(self, message: 'Message') -> None:
        """A stored message went out to a consumer once more."""

    def confirm_failed(self, position: int) -> bool:
        """True if a confirm waiting for ``position`` can never succeed."""

    def add(self, queue: 'Queue', message: 'Message') -> None:
        """A persistent message entered a durable queue; sets ``store_id``."""

    def remove(self, queue: 'Queue', message: 'Message') -> None:
        """The message left the queue for good (acked, dropped, expired)."""

    def write_position(self) -> int:
        """A counter of writes so far; confirms wait until it is synced."""

    def synced_position(self) -> int:
        """Every write up to this position is on disk."""

    def when_synced(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the current write position is synced."""

    def save_definitions(self, definitions: Definitions) -> None:
        """Replace the durable topology."""

    def load_definitions(self) -> Definitions | None:
        """The topology saved last, or None."""

    def close(self) -> None:
        """Flush and release files."""
