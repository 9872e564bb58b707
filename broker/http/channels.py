"""/api/channels: list and show; /api/vhosts/{vhost}/channels."""

from __future__ import annotations

from typing import Any

from . import listing, shapes
from .common import channels_of, node
from .connections import visible
from .errors import not_found
from .request import Call


def _channels(call: Call) -> list[Any]:
    return [ch for conn in visible(call) for ch in channels_of(conn)]


async def list_channels(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    name = node(call)
    return await listing.answer(_channels(call), lambda ch: shapes.channel(ch, name), options,
                                name_of=shapes.channel_name)


async def get_channel(call: Call) -> Any:
    wanted = call.params['name']
    for ch in _channels(call):
        if shapes.channel_name(ch) == wanted:
            return shapes.channel(ch, node(call), with_consumers=True)
    raise not_found()


ROUTES = [
    ('channels', {'GET': list_channels}),
    ('channels/{name}', {'GET': get_channel}),
    ('vhosts/{vhost}/channels', {'GET': list_channels}),
]

