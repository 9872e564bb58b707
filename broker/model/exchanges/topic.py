"""Topic exchange: dot-separated words, ``*`` matches one, ``#`` zero or more.

Binding keys are kept in a trie of words.  A routing key is matched by
walking the trie with the set of nodes reached so far, one word at a time
(an NFA simulation): a node reached through ``#`` stays in the set while
words go by, and each node is in a word's set at most once.  The cost is
at most trie nodes x words, whatever the number of ``#`` (trying every
split point for each ``#`` was exponential: ``#.#.#.#.#.z`` and a 100-word
key took seconds).  Results are cached per routing key until the bindings
change (Celery publishes the same few keys over and over).
"""

from __future__ import annotations

from typing import Any

from .base import Destination, Exchange, add_count, remove_count

_CACHE_LIMIT = 4096


class _Node:
    __slots__ = ('children', 'destinations', 'is_hash')

    def __init__(self, is_hash: bool = False) -> None:
        self.children: dict[str, _Node] = {}
        self.destinations: dict[Destination, int] = {}
        #: Reached through a ``#``: it matches any number of further words.
        self.is_hash = is_hash


class TopicExchange(Exchange):
    kind = 'topic'

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._root = _Node()
        self._cache: dict[str, tuple[Destination, ...]] = {}

    def route(self, routing_key: str, message: Any) -> Any:
        found = self._cache.get(routing_key)
        if found is None:
            found = _match(self._root, routing_key.split('.'))
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
                child = node.children[word] = _Node(is_hash=word == '#')
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


def _match(root: _Node, words: list[str]) -> tuple[Destination, ...]:
    """The destinations of every binding that matches ``words``."""
    current: list[_Node] = []
    _reach(root, current)
    for word in words:
        following: list[_Node] = []
        for node in current:
            if node.is_hash:            # '#' takes this word too
                following.append(node)
            children = node.children
            if children:
                child = children.get(word)
                if child is not None:
                    _reach(child, following)
                if word != '*':
                    star = children.get('*')
                    if star is not None:
                        _reach(star, following)
        if not following:
            return ()
        # Each node once per word: the cost stays nodes x words.
        current = list(dict.fromkeys(following)) if len(following) > 1 else following
    out: dict[Destination, None] = {}
    for node in current:
        for destination in node.destinations:
            out[destination] = None
    return tuple(out)


def _reach(node: _Node, nodes: list[_Node]) -> None:
    """Add ``node`` and the ``#`` nodes under it (which match no word)."""
    nodes.append(node)
    children = node.children
    while '#' in children:
        node = children['#']
        nodes.append(node)
        children = node.children
