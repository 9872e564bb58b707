"""/api/consumers and /api/consumers/{vhost}."""

from __future__ import annotations

from typing import Any

from . import auth, listing, shapes
from .common import all_channels, node
from .request import Call


async def list_consumers(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    names = {v.name for v in auth.visible_vhosts(call)}
    found = [c for ch in all_channels(call) if ch.vhost.name in names
             for c in ch.consumers.values()]
    found.sort(key=lambda c: (c.queue.vhost_name, c.queue.name, c.tag))
    name = node(call)
    return await listing.answer(found, lambda c: shapes.consumer(c, name), options,
                                name_of=lambda c: c.tag)


ROUTES = [
    ('consumers', {'GET': list_consumers}),
    ('consumers/{vhost}', {'GET': list_consumers}),
]
