"""Topic exchange: dot-separated words, ``*`` matches one, ``#`` zero or more.

Binding keys are kept in a trie of words.  A routing key is matched by a
walk of the trie that follows only the children its words name (and ``*``),
as the straightforward recursion does; a ``#`` node is tried at every word
position from where it is reached to the end.  That recursion alone is
exponential in the number of ``#`` (``#.#.#.#.#.z`` and a 100-word key took
seconds); here each ``#`` node remembers the first position it was tried
from, and the positions after it are never tried twice: a ``#`` node is
tried from each position at most once, so a match stays polynomial in trie
nodes x words whatever the number of ``#``, and an ordinary key costs what
the plain walk costs.  Results are cached per routing key until the bindings change (Celery
publishes the same few keys over and over).
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
            words = routing_key.split('.')
            _match(self._root, words, 0, len(words), out, {})
            found = tuple(out)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[routing_key] = found
        return found

    def _index_add(self, destination: Destination, routing_key: str,
                   arguments: dict[str, Any]) -> None:
        node = self._root
        for word in routing_key.split('.'):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
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


def _match(node: _Node, words: list[str], i: int, n: int, out: dict[Destination, None],
           tried: dict[_Node, int]) -> None:
    """Collect into ``out`` the destinations of every binding under ``node``
    that matches ``words[i:]``.  ``tried``: for each ``#`` node, the first
    position it was tried from (every later one was tried then too)."""
    children = node.children
    hash_node = children.get('#')
    if hash_node is not None:
        # '#' takes zero or more words: try it from every position not tried yet.
        stop = tried.get(hash_node, n + 1)
        if i < stop:
            tried[hash_node] = i
            for j in range(i, stop):
                _match(hash_node, words, j, n, out, tried)
    if i == n:
        for destination in node.destinations:
            out[destination] = None
        return
    word = words[i]
    child = children.get(word)
    if child is not None:
        _match(child, words, i + 1, n, out, tried)
    if word != '*':
        star = children.get('*')
        if star is not None:
            _match(star, words, i + 1, n, out, tried)
