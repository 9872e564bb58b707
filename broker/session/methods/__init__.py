"""The method table: every AMQP method a client can send, and who handles it.

One module per AMQP class, one small function per method; a handler takes
``(channel, method)`` (``(connection, method)`` for connection.*) and only
raises for bad input: the connection turns errors into closes.  Every method
pamqp knows is in exactly one of the four sets below
(``tests/test_method_table.py`` checks that):

* :data:`CHANNEL_METHODS`: methods on an open channel, looked up by the
  connection's cold path;
* :data:`FAST_PATH`: the per-message methods, decoded by
  :mod:`leveret.protocol.codec` and handled by the frame loop itself
  (``Connection._handle_frames``), never looked up here;
* :data:`CONNECTION_METHODS`: channel-0 methods, dispatched by the
  connection's state machine (``Handshake.receive_method``);
* :data:`SERVER_METHODS`: what only a server sends; a client that sends one
  gets 503 (connection.* on a channel: "unimplemented method", as RabbitMQ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pamqp import commands as C

from leveret.protocol.constants import BASIC_ACK, BASIC_NACK, BASIC_PUBLISH, BASIC_REJECT

from . import basic, channel, confirm, connection, exchange, queue, tx

Handler = Callable[[Any, Any], None]

CHANNEL_METHODS: dict[int, Handler] = {
    C.Channel.Open.index: channel.open_again,
    C.Channel.Close.index: channel.close,
    C.Channel.CloseOk.index: channel.close_ok,
    C.Channel.Flow.index: channel.flow,
    C.Channel.FlowOk.index: channel.flow_ok,
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
    C.Basic.Get.index: basic.get,
    C.Basic.Recover.index: basic.recover,
    C.Basic.RecoverAsync.index: basic.recover_async,
    C.Confirm.Select.index: confirm.select,
    C.Tx.Select.index: tx.select,
    C.Tx.Commit.index: tx.commit,
    C.Tx.Rollback.index: tx.rollback,
}

#: basic.publish (then its content frames), basic.ack, basic.nack and
#: basic.reject: the frame loop's inline branches, one per index.
FAST_PATH = frozenset((BASIC_PUBLISH, BASIC_ACK, BASIC_NACK, BASIC_REJECT))

CONNECTION_METHODS: dict[int, Handler] = {
    C.Connection.StartOk.index: connection.start_ok,
    C.Connection.TuneOk.index: connection.tune_ok,
    C.Connection.Open.index: connection.open_,
    C.Connection.Close.index: connection.close,
    C.Connection.CloseOk.index: connection.close_ok,
    C.Connection.UpdateSecret.index: connection.update_secret,
    C.Connection.Blocked.index: connection.blocked,
    C.Connection.Unblocked.index: connection.blocked,
}

SERVER_METHODS = frozenset(method.index for method in (
    C.Connection.Start, C.Connection.Secure, C.Connection.SecureOk, C.Connection.Tune,
    C.Connection.OpenOk, C.Connection.UpdateSecretOk,
    C.Channel.OpenOk,
    C.Exchange.DeclareOk, C.Exchange.DeleteOk, C.Exchange.BindOk, C.Exchange.UnbindOk,
    C.Queue.DeclareOk, C.Queue.BindOk, C.Queue.UnbindOk, C.Queue.PurgeOk, C.Queue.DeleteOk,
    C.Basic.QosOk, C.Basic.ConsumeOk, C.Basic.CancelOk, C.Basic.Return, C.Basic.Deliver,
    C.Basic.GetOk, C.Basic.GetEmpty, C.Basic.RecoverOk,
    C.Confirm.SelectOk,
    C.Tx.SelectOk, C.Tx.CommitOk, C.Tx.RollbackOk,
))
