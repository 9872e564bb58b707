"""/api/queues: list, show, declare, delete, purge, get; a queue's bindings."""

from __future__ import annotations

from typing import Any

from leveret.protocol.errors import AMQPError

from . import auth, listing, shapes
from .common import api_error, node, reason_of, unacked_by_queue
from .errors import ApiError, access_refused, bad_request, key_missing, not_found
from .messages import message_json
from .reply import created_or_updated, no_content
from .request import Call, arguments_of, as_bool, as_int
from .sync import after

ACK_MODES = ('ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true',
             'reject_requeue_false')


def _queue(call: Call) -> Any:
    vhost = auth.vhost(call)
    queue = vhost.queues.get(call.params['name'])
    if queue is None:
        raise not_found()
    return vhost, queue


async def list_queues(call: Call) -> Any:
    options = listing.ListOptions.parse(call.query)
    vhosts = auth.visible_vhosts(call)
    objects = [q for v in vhosts for q in sorted(v.queues.values(), key=lambda q: q.name)]
    unacked = await unacked_by_queue(call.broker)
    name = node(call)
    return await listing.answer(
        objects, lambda q: shapes.queue(q, name, unacked.get(q, (0, 0))), options)


async def get_queue(call: Call) -> Any:
    _vhost, queue = _queue(call)
    unacked = await unacked_by_queue(call.broker)
    return shapes.queue(queue, node(call), unacked.get(queue, (0, 0)), with_consumers=True)


async def put_queue(call: Call) -> Any:
    vhost_name = call.params['vhost']
    if vhost_name not in call.broker.vhosts:
        raise ApiError(404, 'not_found', 'vhost_not_found')
    vhost = auth.vhost(call)
    name = call.params['name']
    body = call.body()
    auth.require_configure(call, vhost_name, name)
    arguments = arguments_of(body)
    if 'queue_type' in body and 'x-queue-type' not in arguments:
        arguments = {**arguments, 'x-queue-type': body['queue_type']}
    durable = as_bool(body.get('durable'), False)
    if arguments.get('x-queue-type') == 'quorum' and not durable:
        raise bad_request(f"invalid property 'non-durable' for queue '{name}' in vhost "
                          f"'{vhost_name}'")
    store = vhost.store
    position = store.write_position()
    existed = name in vhost.queues
    try:
        vhost.declare_queue(name, None, durable=durable,
                            auto_delete=as_bool(body.get('auto_delete'), False),
                            arguments=arguments)
    except AMQPError as exc:
        raise api_error(exc) from None
    await after(store, position)
    return created_or_updated(not existed)


async def delete_queue(call: Call) -> Any:
    vhost, queue = _queue(call)
    auth.require_configure(call, vhost.name, queue.name)
    store = vhost.store
    position = store.write_position()
    try:
        vhost.delete_queue(queue, if_unused=call.flag('if-unused'),
                           if_empty=call.flag('if-empty'))
    except AMQPError as exc:
        # RabbitMQ's API says "not empty" where queue.delete says "is not empty".
        raise bad_request(reason_of(exc).replace(' is not empty', ' not empty')) from None
    await after(store, position)
    return no_content()


async def purge(call: Call) -> Any:
    vhost, queue = _queue(call)
    if not auth.permitted(call, vhost.name, 'read', queue.name):
        raise access_refused()
    queue.purge()
    return no_content()


async def get_messages(call: Call) -> Any:
    vhost = call.broker.vhosts.get(call.params['vhost'])
    if vhost is None:
        raise not_found()
    auth.vhost(call)
    name = call.params['name']
    body = call.body()
    missing = [k for k in ('count', 'ackmode') if k not in body]
    if 'encoding' not in body:
        missing.append('encoding')
    if missing:
        raise key_missing(*missing)
    count = as_int(body['count'], 'count')
    ackmode = body['ackmode']
    encoding = body['encoding']
    if ackmode not in ACK_MODES:
        raise ApiError(500, '', '', empty=True)     # as RabbitMQ
    if encoding not in ('auto', 'base64'):
        raise bad_request('Unsupported encoding. Please use auto or base64.')
    truncate = as_int(body['truncate'], 'truncate') if body.get('truncate') not in (
        None, '') else None
    queue = vhost.queues.get(name)
    if queue is None:
        raise ApiError(404, 'not_found', f"NOT_FOUND - no queue '{name}' in vhost "
                                         f"'{vhost.name}'")
    if queue.exclusive:
        raise bad_request(f"RESOURCE_LOCKED - cannot obtain exclusive access to locked "
                          f"queue '{name}' in vhost '{vhost.name}'")
    if not auth.permitted(call, vhost.name, 'read', name):
        raise bad_request(f"403 ACCESS_REFUSED - access to queue '{name}' in vhost "
                          f"'{vhost.name}' refused for user '{call.user.name}'")
    taken = []
    out = []
    for _ in range(max(0, count)):
        message = queue.get()
        if message is None:
            if not taken:
                queue.stat_get_empty += 1
            break
        taken.append(message)
        if message.redelivered:
            queue.stat_redeliver += 1
        out.append(message_json(message, len(queue.ready), encoding, truncate))
    requeue = ackmode.endswith('requeue_true')
    if requeue:
        queue.stat_get += len(taken)
    else:
        queue.stat_get_no_ack += len(taken)
    if taken:
        store = vhost.store
        position = store.write_position()
        if requeue:
            for message in taken:
                if message.store_id:
                    store.delivered(message)
            queue.requeue(taken)
        elif ackmode.startswith('reject'):
            queue.reject(taken)
        else:
            for message in taken:
                queue.settle(message)
        await after(store, position)
    return out


async def queue_bindings(call: Call) -> Any:
    vhost, queue = _queue(call)
    out = [shapes.binding(vhost.name, '', queue, queue.name, {})]
    explicit = [shapes.binding(vhost.name, source.name, queue, key, arguments)
                for source, key, arguments in vhost.bindings_of(queue)]
    explicit.sort(key=lambda b: (b['source'], b['routing_key'], b['properties_key']))
    return out + explicit


async def queue_actions(call: Call) -> Any:
    _queue(call)
    raise bad_request('unsupported action')


ROUTES = [
    ('queues', {'GET': list_queues}),
    ('queues/{vhost}', {'GET': list_queues}),
    ('queues/{vhost}/{name}', {'GET': get_queue, 'PUT': put_queue, 'DELETE': delete_queue}),
    ('queues/{vhost}/{name}/contents', {'DELETE': purge}),
    ('queues/{vhost}/{name}/get', {'POST': get_messages}),
    ('queues/{vhost}/{name}/bindings', {'GET': queue_bindings}),
    ('queues/{vhost}/{name}/actions', {'POST': queue_actions}),
]
