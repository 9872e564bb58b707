"""The table from AMQP method to handler, one module per AMQP class.

Each handler takes ``(channel, method)`` and raises an AMQP error for bad
input; the connection turns errors into channel or connection closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pamqp import commands as C

from . import basic, confirm_tx, exchange, queue

Handler = Callable[[Any, Any], None]

HANDLERS: dict[int, Handler] = {
    C.Exchange.Declare.index: exchange.declare,
    C.Exchange.Delete.index: exchange.delete,
    C.Exchange.Bind.index: exchange.bind,
    C.Exchange.Unbind.index: exchange.unbind,
    C.Queue.Declare.index: queue.declare,
    C.Queue.Bind.index: queue.bind,
    C.Queue.Unbind.index: queue.unbind,
    C.Queue.Purge.index: queue.purge,
    C.Queue.Delete.index: queue.delete,
    C.Basic.Qos.index: basic.qos,
    C.Basic.Consume.index: basic.consume,
    C.Basic.Cancel.index: basic.cancel,
    C.Basic.Publish.index: basic.publish,
    C.Basic.Get.index: basic.get,
    C.Basic.Ack.index: basic.ack,
    C.Basic.Nack.index: basic.nack,
    C.Basic.Reject.index: basic.reject,
    C.Basic.Recover.index: basic.recover,
    C.Basic.RecoverAsync.index: basic.recover_async,
    C.Confirm.Select.index: confirm_tx.confirm_select,
    C.Tx.Select.index: confirm_tx.tx_select,
    C.Tx.Commit.index: confirm_tx.tx_commit,
    C.Tx.Rollback.index: confirm_tx.tx_rollback,
}
