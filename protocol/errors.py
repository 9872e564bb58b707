"""AMQP reply codes as exceptions.

Code anywhere in the broker raises one of these; exactly one place (the
connection's frame dispatcher) turns it into a ``channel.close`` or a
``connection.close``.  ``text`` follows RabbitMQ's wording, e.g.
``"NOT_FOUND - no queue 'x' in vhost '/'"``, because users search for it.
"""

from __future__ import annotations


class AMQPError(Exception):
    """An error that ends a channel or a connection with a reply code."""

    code: int = 541
    name: str = 'INTERNAL_ERROR'
    #: True for connection (hard) errors, False for channel (soft) errors.
    connection_level: bool = True

    def __init__(self, text: str = '', class_id: int = 0, method_id: int = 0):
        self.text = f'{self.name} - {text}' if text else self.name
        self.class_id = class_id
        self.method_id = method_id
        super().__init__(self.text)

    def with_method(self, class_id: int, method_id: int) -> 'AMQPError':
        """Record the method that caused the error unless already known."""
        if not self.class_id:
            self.class_id, self.method_id = class_id, method_id
        return self


class ChannelError(AMQPError):
    """A soft error: only the channel is closed."""

    connection_level = False


class ConnectionError_(AMQPError):  # noqa: N801 - avoid shadowing builtin
    """A hard error: the whole connection is closed."""

    connection_level = True


# --- soft errors (channel.close) -------------------------------------------
class ContentTooLarge(ChannelError):
    code, name = 311, 'CONTENT_TOO_LARGE'


class NoRoute(ChannelError):
    code, name = 312, 'NO_ROUTE'


class AccessRefused(ChannelError):
    code, name = 403, 'ACCESS_REFUSED'


class NotFound(ChannelError):
    code, name = 404, 'NOT_FOUND'


class ResourceLocked(ChannelError):
    code, name = 405, 'RESOURCE_LOCKED'


class PreconditionFailed(ChannelError):
    code, name = 406, 'PRECONDITION_FAILED'


# --- hard errors (connection.close) ----------------------------------------
class ConnectionForced(ConnectionError_):
    code, name = 320, 'CONNECTION_FORCED'


class InvalidPath(ConnectionError_):
    code, name = 402, 'INVALID_PATH'


class ConnectionAccessRefused(ConnectionError_):
    code, name = 403, 'ACCESS_REFUSED'


class FrameError(ConnectionError_):
    code, name = 501, 'FRAME_ERROR'


class SyntaxError_(ConnectionError_):  # noqa: N801
    code, name = 502, 'SYNTAX_ERROR'


class CommandInvalid(ConnectionError_):
    code, name = 503, 'COMMAND_INVALID'


class ChannelErrorCode(ConnectionError_):
    """Reply code 504: a frame for a channel that is not open."""

    code, name = 504, 'CHANNEL_ERROR'


class UnexpectedFrame(ConnectionError_):
    code, name = 505, 'UNEXPECTED_FRAME'


class ResourceError(ConnectionError_):
    code, name = 506, 'RESOURCE_ERROR'


class NotAllowed(ConnectionError_):
    code, name = 530, 'NOT_ALLOWED'


class NotImplemented_(ConnectionError_):  # noqa: N801
    code, name = 540, 'NOT_IMPLEMENTED'


class InternalError(ConnectionError_):
    code, name = 541, 'INTERNAL_ERROR'
