"""What the management API needs of the broker process.

The API reads the model and the sessions through their public attributes
and methods; what only the process can do (create and delete vhosts,
definitions as a whole, its listeners) it asks through :class:`BrokerPort`,
which ``broker.server.Broker`` implements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..auth import Users
    from ..config import Settings
    from ..metrics.history import History
    from ..model.counters import ChurnCounters
    from ..model.memory import MemoryMonitor
    from ..model.vhost import VirtualHost
    from ..session.registry import Sessions
    from ..store.base import Store


class BrokerPort(Protocol):
    settings: Settings
    sessions: Sessions
    vhosts: Mapping[str, VirtualHost]
    users: Users
    memory: MemoryMonitor
    churn: ChurnCounters
    store: Store
    #: Wall-clock time the broker started.
    started_at: float
    #: ``leveret@<host>``: the API's ``node`` and ``cluster_name``.
    node_name: str
    #: Queue depths and Celery task rates of the last minutes.
    history: History

    def add_vhost(self, name: str, description: str | None = None,
                  tags: list[str] | None = None) -> VirtualHost:
        """Find or create a vhost (saved)."""

    def set_vhost_limits(self, name: str, limits: dict[str, int]) -> None:
        """Replace a vhost's limits (saved)."""

    def delete_vhost(self, name: str) -> bool:
        """Delete a vhost and everything in it; False if there was none."""

    def listeners(self) -> list[dict[str, Any]]:
        """``{"protocol", "ip_address", "port"}`` of every listening socket."""

    async def export_definitions(self, vhost: str | None = None) -> dict[str, Any]:
        """Definitions in RabbitMQ's JSON format (of one vhost, or all)."""

    def import_definitions(self, document: dict[str, Any],
                           vhost: str | None = None) -> list[str]:
        """Apply definitions (validated whole first, then all or nothing);
        returns a line per item that was not applied.  Raises ``ValueError``
        with the reason when the document is refused."""
