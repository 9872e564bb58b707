"""Where definitions and persistent messages are kept.

The broker talks to a store only through :class:`~leveret.broker.store.base.Store`;
:class:`~leveret.broker.store.memory.MemoryStore` keeps nothing across restarts.
"""

from .base import Definitions, Recovered, Store, StoredMessage, StoredQueue, StoreFailed
from .memory import MemoryStore

__all__ = ['Definitions', 'MemoryStore', 'Recovered', 'Store', 'StoreFailed', 'StoredMessage',
           'StoredQueue']
