"""RabbitMQ's permission model: what a user may do with a resource.

Per user and vhost a permission entry holds three regular expressions,
``configure``, ``write`` and ``read`` (:class:`~.auth.Permission`), matched
*unanchored* against a resource's name (Python's ``re.search``, as Erlang's
``re:run``); ``""`` matches nothing; the default exchange is checked under
the name ``amq.default``.  Topic permissions (:class:`~.auth.TopicPermission`,
per user, vhost and exchange) add ``write`` and ``read`` expressions over
routing keys for topic exchanges, with ``{username}`` and ``{vhost}``
expanded first; a topic exchange without an entry for the user is open.

Which operation needs what is RabbitMQ's table (``rabbit_channel``'s
``check_*_permitted``); the session's method handlers call :class:`Grants`
in RabbitMQ's order.  A :class:`Grants` is made when a channel opens, from
the entries as they are then, so a permission changed at run time applies to
channels opened afterwards (RabbitMQ caches per channel too).  Refusals
raise ``403 ACCESS_REFUSED`` with RabbitMQ's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from leveret.protocol.errors import AccessRefused

from .auth import Permission, TopicPermission, Users

Kind = Literal['configure', 'write', 'read']
#: What a name is matched with: ``pattern.search``, or a function that says no.
Matcher = Callable[[str], object]

#: Decisions remembered per channel and kind (then forgotten and made again):
#: a long-lived channel that names many resources holds bounded memory.
CACHE_SIZE = 4096


def _nothing(_name: str) -> None:
    return None


def compile_pattern(pattern: str) -> Matcher:
    """``pattern`` as a matcher; ``""`` matches nothing, as in RabbitMQ.

    A pattern that does not compile (one imported from elsewhere, say)
    matches nothing either: deny rather than guess.
    """
    if pattern == '':
        return _nothing
    try:
        return re.compile(pattern).search
    except re.error:
        return _nothing


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable regular expression, or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression '{pattern}': {exc}"
    return None


def resource_text(kind: str, name: str, vhost: str) -> str:
    """RabbitMQ's ``rs/1``: ``queue 'q' in vhost '/'``."""
    return f"{kind} '{name}' in vhost '{vhost}'"


class _TopicRule:
    __slots__ = ('write', 'read')

    def __init__(self, entry: TopicPermission, username: str, vhost: str) -> None:
        self.write = compile_pattern(_expand(entry.write, username, vhost))
        self.read = compile_pattern(_expand(entry.read, username, vhost))


def _expand(pattern: str, username: str, vhost: str) -> str:
    # The values are escaped: a user called 'a.b' gets '^a\.b', not a pattern
    # that also matches 'axb' (RabbitMQ substitutes them as they are).
    return pattern.replace('{username}', re.escape(username)).replace(
        '{vhost}', re.escape(vhost))


class Grants:
    """One user's permissions on one vhost, compiled, with their decisions cached.

    ``granted[kind]`` holds the names already allowed: a check that passed
    once costs a set lookup afterwards.
    """

    def __init__(self, username: str, vhost: str, permission: Permission | None,
                 topic: dict[str, TopicPermission] | None = None,
                 impersonator: bool = False) -> None:
        self.username = username
        self.vhost = vhost
        self.impersonator = impersonator
        if permission is None:
            self._match: dict[str, Matcher] = dict.fromkeys(
                ('configure', 'write', 'read'), _nothing)
        else:
            self._match = {'configure': compile_pattern(permission.configure),
                           'write': compile_pattern(permission.write),
                           'read': compile_pattern(permission.read)}
        self.granted: dict[str, set[tuple[str, str]]] = {
            'configure': set(), 'write': set(), 'read': set()}
        self._topic = {exchange: _TopicRule(entry, username, vhost)
                       for exchange, entry in (topic or {}).items()}
        self._topic_granted: dict[tuple[str, str, str], None] = {}

    @classmethod
    def of(cls, users: Users, username: str, vhost: str) -> Grants:
        """The grants of ``username`` on ``vhost`` as the users hold them now."""
        user = users.users.get(username)
        topic = {exchange: entry for (v, u, exchange), entry in users.topic_permissions.items()
                 if v == vhost and u == username}
        return cls(username, vhost, users.permissions.get((vhost, username)), topic,
                   impersonator=user is not None and user.has_tag('impersonator'))

    # --- resources ---------------------------------------------------------------
    def allows(self, kind: Kind, resource: str, name: str) -> bool:
        if resource == 'exchange' and name == '':
            name = 'amq.default'
        key = (resource, name)
        granted = self.granted[kind]
        if key in granted:
            return True
        if self._match[kind](name) is None:
            return False
        if len(granted) >= CACHE_SIZE:
            granted.clear()
        granted.add(key)
        return True

    def check(self, kind: Kind, resource: Literal['queue', 'exchange'], name: str) -> None:
        """Raise 403 unless ``kind`` access to the resource is granted."""
        if not self.allows(kind, resource, name):
            shown = 'amq.default' if resource == 'exchange' and name == '' else name
            raise AccessRefused(
                f"access to {resource_text(resource, shown, self.vhost)} refused for user "
                f"'{self.username}'")

    # --- topics ----------------------------------------------------------------------
    def has_topic_rule(self, exchange: str) -> bool:
        """Does a topic permission restrict routing keys on ``exchange``?"""
        return exchange in self._topic

    def check_topic(self, kind: Literal['write', 'read'], exchange: str,
                    routing_key: str) -> None:
        """Raise 403 unless the topic permission on ``exchange`` allows the key."""
        rule = self._topic.get(exchange)
        if rule is None:
            return
        key = (kind, exchange, routing_key)
        cache = self._topic_granted
        if key in cache:
            return
        if (rule.write if kind == 'write' else rule.read)(routing_key) is None:
            raise AccessRefused(
                f"access to topic '{routing_key}' in exchange "
                f"{resource_text('topic', exchange, self.vhost)} refused for user "
                f"'{self.username}'")
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[key] = None
