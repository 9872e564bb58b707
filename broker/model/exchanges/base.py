"""What every exchange type shares: identity, flags and the binding set.

A type subclass keeps its own index for routing (a dict for direct, a trie
for topic, ...) and implements :meth:`Exchange.route`.  Destinations are
queues or other exchanges (exchange-to-exchange bindings); the virtual host
follows exchange destinations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ..counters import ExchangeCounters

if TYPE_CHECKING:
    from ..message import Message

Destination = Any          # a Queue or an Exchange
BindingKey = tuple[Destination, str, Any]


def freeze(value: Any) -> Any:
    """A hashable form of a field-table value, for comparing bindings."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


class Exchange(ExchangeCounters):
    kind: ClassVar[str] = ''

    def __init__(self, vhost: str, name: str, durable: bool = False,
                 auto_delete: bool = False, internal: bool = False,
                 arguments: dict[str, Any] | None = None) -> None:
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = dict(arguments or {})
        #: (destination, routing key, frozen arguments) -> arguments
        self.bindings: dict[BindingKey, dict[str, Any]] = {}
        #: destination -> its binding keys: what deleting a queue unbinds,
        #: found without a walk over every binding of the exchange.
        self._keys_to: dict[Destination, dict[BindingKey, None]] = {}
        #: Bindings whose destination is an exchange: routing must recurse.
        self.exchange_destinations = 0
        self.deleted = False
        self.init_counters()

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.name!r}>'

    @property
    def alternate_exchange(self) -> str | None:
        value = self.arguments.get('alternate-exchange')
        return value if isinstance(value, str) else None

    # --- bindings --------------------------------------------------------
    def bind(self, destination: Destination, routing_key: str,
             arguments: dict[str, Any]) -> bool:
        """Add a binding; False if it already existed."""
        key = (destination, routing_key, freeze(arguments))
        if key in self.bindings:
            return False
        self.bindings[key] = arguments
        self._keys_to.setdefault(destination, {})[key] = None
        if isinstance(destination, Exchange):
            self.exchange_destinations += 1
        self._index_add(destination, routing_key, arguments)
        return True

    def unbind(self, destination: Destination, routing_key: str,
               arguments: dict[str, Any]) -> bool:
        """Remove a binding; False if there was none."""
        key = (destination, routing_key, freeze(arguments))
        if key not in self.bindings:
            return False
        del self.bindings[key]
        keys = self._keys_to[destination]
        del keys[key]
        if not keys:
            del self._keys_to[destination]
        if isinstance(destination, Exchange):
            self.exchange_destinations -= 1
        self._index_remove(destination, routing_key, arguments)
        return True

    def unbind_destination(self, destination: Destination) -> int:
        """Remove every binding to ``destination``; return how many."""
        keys = list(self._keys_to.get(destination, ()))
        for key in keys:
            self.unbind(destination, key[1], self.bindings[key])
        return len(keys)

    def bindings_to(self, destination: Destination) -> list[tuple[str, dict[str, Any]]]:
        """``(routing key, arguments)`` of every binding to ``destination``."""
        return [(key[1], self.bindings[key]) for key in self._keys_to.get(destination, ())]

    def clear_bindings(self) -> None:
        """Forget every binding (the exchange is deleted)."""
        self.bindings.clear()
        self._keys_to.clear()

    def binding_arguments(self, destination: Destination, routing_key: str,
                          arguments: dict[str, Any]) -> dict[str, Any] | None:
        """The arguments a binding was made with (an unbind may list them in
        another order), or None if there is no such binding."""
        return self.bindings.get((destination, routing_key, freeze(arguments)))

    def has_binding(self, destination: Destination, routing_key: str,
                    arguments: dict[str, Any]) -> bool:
        return (destination, routing_key, freeze(arguments)) in self.bindings

    # --- what a type implements ------------------------------------------
    def route(self, routing_key: str, message: 'Message') -> Iterable[Destination]:
        raise NotImplementedError

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        raise NotImplementedError

    def _index_remove(self, destination: Destination, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        raise NotImplementedError


def add_count(index: dict[Destination, int], destination: Destination) -> None:
    index[destination] = index.get(destination, 0) + 1


def remove_count(index: dict[Destination, int], destination: Destination) -> None:
    left = index.get(destination, 0) - 1
    if left > 0:
        index[destination] = left
    else:
        index.pop(destination, None)
