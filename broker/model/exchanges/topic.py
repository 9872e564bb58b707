"""Topic exchange: dot-separated words, ``*`` matches one, ``#`` zero or more.

Binding keys are kept in a trie of words; a routing key is matched by
walking it, branching at ``#``.  Results are cached per routing key until
the bindings change (Celery publishes the same few keys over and over).
"""

from __future__ import annotations

from typing import Any

from .base import Destination, Exchange, add_count, remove_count

_CACHE_LIMIT = 4096


class _Node:
    __slots__ = ('children', 'destinations')

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: dict[Destination, int] = {}


class TopicExchange(Exchange):
    kind = 'topic'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._root = _Node()
        self._cache: dict[str, tuple[Destination, ...]] = {}

    def route(self, routing_key: str, message: Any) -> Any:
        found = self._cache.get(routing_key)
        if found is None:
            out: dict[Destination, None] = {}
            _match(self._root, routing_key.split('.'), 0, out)
            found = tuple(out)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[routing_key] = found
        return found

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        node = self._root
        for word in routing_key.split('.'):
            node = node.children.setdefault(word, _Node())
        add_count(node.destinations, destination)
        self._cache.clear()

    def _index_remove(self, destination: Destination, routing_key: str,
                      arguments: dict[str, Any]) -> None:
        path = [self._root]
        words = routing_key.split('.')
        for word in words:
            nxt = path[-1].children.get(word)
            if nxt is None:
                return
            path.append(nxt)
        remove_count(path[-1].destinations, destination)
        # Prune empty branches so the trie does not grow forever.
        for i in range(len(words), 0, -1):
            node = path[i]
            if node.children or node.destinations:
                break
            del path[i - 1].children[words[i - 1]]
        self._cache.clear()


def _match(node: _Node, words: list[str], i: int, out: dict[Destination, None]) -> None:
    """Collect the destinations of every binding that matches ``words[i:]``."""
    children = node.children
    hash_node = children.get('#')
    if hash_node is not None:
        # '#' consumes zero or more words: try every split point.
        for j in range(i, len(words) + 1):
            _match(hash_node, words, j, out)
    if i == len(words):
        for destination in node.destinations:
            out[destination] = None
        return
    word = words[i]
    nxt = children.get(word)
    if nxt is not None:
        _match(nxt, words, i + 1, out)
    if word != '*':
        star = children.get('*')
        if star is not None:
            _match(star, words, i + 1, out)
