"""Health checks (/api/health/checks/...) and /api/aliveness-test/{vhost}.

A passing check answers 200 ``{"status":"ok"}``, a failing one 503 with
``status: failed`` and the reason, as RabbitMQ; a container HEALTHCHECK
can use them.
"""

from __future__ import annotations

from typing import Any

from pamqp import commands

from ..model.vhost import VirtualHost
from . import auth
from .messages import header_for, publish
from .reply import Reply
from .request import Call

ALIVENESS_QUEUE = 'aliveness-test'


def ok(**extra: Any) -> dict[str, Any]:
    return {'status': 'ok', **extra}


def failed(reason: str, **extra: Any) -> Reply:
    return Reply(503, {'status': 'failed', 'reason': reason, **extra})


async def alarms(call: Call) -> Any:
    memory = call.broker.memory
    if memory.alarm:
        return failed('resource alarm(s) in effect in the cluster',
                      alarms=[{'node': call.broker.node_name, 'resource': 'memory'}])
    return ok()


async def port_listener(call: Call) -> Any:
    try:
        port = int(call.params['port'])
    except ValueError:
        return failed('invalid port', missing=call.params['port'])
    ports = [item['port'] for item in call.broker.listeners()]
    if port not in ports:
        return failed('No active listener', missing=port, ports=ports)
    return ok(port=port)


async def protocol_listener(call: Call) -> Any:
    protocol = call.params['protocol']
    protocols = [item['protocol'] for item in call.broker.listeners()]
    if protocol not in protocols:
        return failed('No active listener', missing=protocol, protocols=protocols)
    return ok(protocol=protocol)


async def virtual_hosts(call: Call) -> Any:
    return ok()


async def always_ok(call: Call) -> Any:
    return ok()


async def aliveness(call: Call) -> Any:
    """A real declare, publish and get on the vhost (its queue stays, as RabbitMQ)."""
    vhost: VirtualHost = auth.vhost(call)
    queue = vhost.declare_queue(ALIVENESS_QUEUE, None, durable=False)
    body = b'test_message'
    routed, _ = publish(vhost, '', ALIVENESS_QUEUE, header_for(commands.Basic.Properties(),
                                                                body), body)
    message = queue.get() if routed else None
    if message is None:
        return failed('aliveness test failed')
    queue.settle(message)
    if message.body != body:
        return failed('aliveness test failed')
    return ok()


ROUTES = [
    ('health/checks/alarms', {'GET': alarms}),
    ('health/checks/local-alarms', {'GET': alarms}),
    ('health/checks/port-listener/{port}', {'GET': port_listener}),
    ('health/checks/protocol-listener/{protocol}', {'GET': protocol_listener}),
    ('health/checks/virtual-hosts', {'GET': virtual_hosts}),
    ('health/checks/node-is-quorum-critical', {'GET': always_ok}),
    ('health/checks/node-is-mirror-sync-critical', {'GET': always_ok}),
    ('health/checks/certificate-expiration/{within}/{unit}', {'GET': always_ok}),
    ('aliveness-test/{vhost}', {'GET': aliveness}),
]
