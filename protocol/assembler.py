"""Content assembly: a content-carrying method, its header, its body frames.

AMQP sends a message as a method frame (basic.publish from a client,
basic.deliver, basic.get-ok or basic.return from a server), a content-header
frame announcing the body size, then body frames until that many bytes
arrived (spec 4.2.6).  Nothing else may come in between on that channel.

:class:`ContentAssembler` is that rule for one channel and nothing more, as
RabbitMQ's ``rabbit_command_assembler``: pure, no I/O, no knowledge of what
the method means.  The broker feeds it basic.publish content, the worker's
consumer connection basic.deliver content::

    assembler = ContentAssembler(max_body_size=settings.max_message_size)
    assembler.start(publish, BASIC_PUBLISH)     # the method, decoded by the caller
    assembler.header(header_payload)            # None: body frames follow
    done = assembler.body(body_payload)         # (method, header, body) once complete

Frames out of order raise :class:`~leveret.protocol.errors.UnexpectedFrame`
(505) with RabbitMQ's texts; errors that concern the content carry the class
and method id of the method that started it, as RabbitMQ reports them.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from .codec import decode_content_header
from .errors import FrameError, PreconditionFailed, UnexpectedFrame

M = TypeVar('M')
E = TypeVar('E', UnexpectedFrame, FrameError, PreconditionFailed)

#: A complete message: the method that started it, the content-header
#: payload (relayed as it came) and the body.
Content = tuple[M, bytes, bytes]


class ContentAssembler(Generic[M]):
    """Method -> content header -> body frames, for one channel.

    ``method`` is None while no content is expected; ``header`` is None
    until the content header arrived.  The hot path of the broker reads
    ``method`` directly to tell whether a method frame may come now.
    """

    __slots__ = ('method', 'header', 'body_size', 'max_body_size', '_index', '_received',
                 '_parts')

    def __init__(self, max_body_size: int | None = None) -> None:
        #: The content-carrying method whose content is being assembled.
        self.method: M | None = None
        #: Its content-header payload, once received.
        self.header: bytes | None = None
        self.body_size = 0
        #: Larger announced bodies are refused with 406 (None: no limit).
        self.max_body_size = max_body_size
        self._index = 0
        self._received = 0
        self._parts: list[bytes] = []

    def start(self, method: M, index: int) -> None:
        """``method`` (method index ``index``, e.g. ``BASIC_PUBLISH``) announces content."""
        if self.method is not None:
            raise self.unexpected()
        self.method = method
        self._index = index
        self.header = None

    def header_frame(self, payload: bytes) -> Content[M] | None:
        """A content-header frame; the whole content when the body is empty."""
        method = self.method
        if method is None:
            raise UnexpectedFrame('expected method frame, got non method frame instead')
        if self.header is not None:
            raise self._error(
                UnexpectedFrame('expected content body, got non content body frame instead'))
        try:
            class_id, weight, body_size = decode_content_header(payload)
        except ValueError as exc:
            raise self._error(FrameError(f'cannot decode frame: {exc}')) from None
        expected_class = self._index >> 16
        if class_id != expected_class:
            raise self._error(UnexpectedFrame(
                f'expected content header for class {expected_class}, got one for class '
                f'{class_id} instead'))
        if weight != 0:
            raise self._error(UnexpectedFrame(
                f'expected content header for class {expected_class}, got non content header '
                f'frame instead'))
        limit = self.max_body_size
        if limit is not None and body_size > limit:
            raise self._error(PreconditionFailed(
                f'message size {body_size} is larger than configured max size {limit}'))
        if body_size == 0:
            self.method = None
            return method, payload, b''
        self.header = payload
        self.body_size = body_size
        self._received = 0
        return None

    def body_frame(self, payload: bytes) -> Content[M] | None:
        """A body frame; the whole content once the announced size arrived."""
        header = self.header
        if header is None:
            if self.method is None:
                raise UnexpectedFrame('expected method frame, got non method frame instead')
            raise self.unexpected()
        received = self._received + len(payload)
        if received > self.body_size:
            raise self._error(UnexpectedFrame(
                f'received {received} body bytes, more than the content header '
                f'announced ({self.body_size})'))
        if received == self.body_size:
            method = self.method
            assert method is not None
            self.method = self.header = None
            if self._parts:
                self._parts.append(payload)
                payload = b''.join(self._parts)
                self._parts = []
            return method, header, payload
        self._parts.append(payload)
        self._received = received
        return None

    def unexpected(self) -> UnexpectedFrame:
        """The error for a method frame while content is expected (505)."""
        if self.method is None:
            return UnexpectedFrame('expected method frame, got non method frame instead')
        if self.header is None:
            return self._error(UnexpectedFrame(
                f'expected content header for class {self._index >> 16}, got non content '
                f'header frame instead'))
        return self._error(
            UnexpectedFrame('expected content body, got non content body frame instead'))

    def reset(self) -> None:
        """Forget a content in progress (the channel is closing)."""
        self.method = self.header = None
        self._parts = []

    def _error(self, exc: E) -> E:
        exc.with_method(self._index >> 16, self._index & 0xFFFF)
        return exc
