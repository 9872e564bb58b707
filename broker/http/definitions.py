"""/api/definitions[/{vhost}]: export (GET) and import (POST), RabbitMQ's
JSON format.  Administrators only.

An import answers 204 when every item was applied, and 200 with
``{"not_applied": [...]}``, one line per item, when some were not (policies,
parameters: Leveret has none); a document that cannot be applied whole is
refused with 400 and nothing of it is applied.
"""

from __future__ import annotations

import json
from typing import Any

from . import auth
from .errors import bad_request
from .reply import Reply, no_content
from .request import Call
from .sync import durable


async def export(call: Call) -> Any:
    auth.require_admin(call)
    vhost = call.params.get('vhost')
    if vhost is not None and vhost not in call.broker.vhosts:
        raise bad_request('vhost_not_found')
    data = await call.broker.export_definitions(vhost)
    download = call.query.get('download')
    if download:
        return Reply(200, data, headers={
            'content-disposition': f'attachment; filename={download}'})
    return data


async def import_(call: Call) -> Any:
    auth.require_admin(call)
    vhost = call.params.get('vhost')
    if vhost is not None and vhost not in call.broker.vhosts:
        raise bad_request('vhost_not_found')
    try:
        document = json.loads(call.raw_body or b'{}')
    except (ValueError, UnicodeDecodeError):
        raise bad_request('not_json') from None
    try:
        report = call.broker.import_definitions(document, vhost)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    store = call.broker.store
    await durable(store, store.write_position())
    if report:
        return Reply(200, {'not_applied': report})
    return no_content()


ROUTES = [
    ('definitions', {'GET': export, 'POST': import_}),
    ('definitions/{vhost}', {'GET': export, 'POST': import_}),
]
