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

from .codec import CONTENT_HEADER_SIZES as _SIZES
from .errors import FrameError, PreconditionFailed, UnexpectedFrame

M = TypeVar('M')
E = TypeVar('E', UnexpectedFrame, FrameError, PreconditionFailed)

_NO_LIMIT = 1 << 64      # above any body size a content header can announce

#: A complete message: the method that started it, the content-header
#: payload (relayed as it came) and the body.
Content = tuple[M, bytes, bytes]


class ContentAssembler(Generic[M]):
    """Method -> content header -> body frames, for one channel.

    ``method`` is None while no content is expected; ``header`` is None
    until the content header arrived.  The hot path of the broker reads
    ``method`` directly to tell whether a method frame may come now.  The
    per-frame methods keep their common case short (every message passes
    here): checks that fail go to small methods that build the error.
    """

    __slots__ = ('method', 'header', 'body_size', 'max_body_size', '_index', '_class_id',
                 '_received', '_parts')

    def __init__(self, max_body_size: int | None = None) -> None:
        #: The content-carrying method whose content is being assembled.
        self.method: M | None = None
        #: Its content-header payload, once received.
        self.header: bytes | None = None
        self.body_size = 0
        #: Larger announced bodies are refused with 406.
        self.max_body_size = max_body_size if max_body_size is not None else _NO_LIMIT
        self._index = 0
        self._class_id = 0
        self._received = 0
        self._parts: list[bytes] = []

    def start(self, method: M, index: int) -> None:
        """``method`` (method index ``index``, e.g. ``BASIC_PUBLISH``) announces content."""
        if self.method is not None:
            raise self.unexpected()
        self.method = method        # header is None already: it goes with method
        if index != self._index:
            self._index = index
            self._class_id = index >> 16

    def header_frame(self, payload: bytes) -> Content[M] | None:
        """A content-header frame; the whole content when the body is empty."""
        method = self.method
        if method is None or self.header is not None:
            raise self._misplaced_header()
        if len(payload) < 14:
            raise self._error(FrameError('cannot decode frame: content header too short'))
        class_id, weight, body_size = _SIZES.unpack_from(payload)
        if class_id != self._class_id or weight:
            raise self._bad_header(class_id)
        if body_size > self.max_body_size:
            raise self._error(PreconditionFailed(
                f'message size {body_size} is larger than configured max size '
                f'{self.max_body_size}'))
        if body_size:
            self.header = payload
            self.body_size = body_size
            self._received = 0
            return None
        self.method = None
        return method, payload, b''

    def body_frame(self, payload: bytes) -> Content[M] | None:
        """A body frame; the whole content once the announced size arrived."""
        header = self.header
        if header is None:
            raise self._misplaced_body()
        received = self._received + len(payload)
        body_size = self.body_size
        if received != body_size:
            if received > body_size:
                raise self._error(UnexpectedFrame(
                    f'received {received} body bytes, more than the content header '
                    f'announced ({body_size})'))
            self._parts.append(payload)
            self._received = received
            return None
        method = self.method
        self.method = self.header = None
        if self._parts:
            self._parts.append(payload)
            payload = b''.join(self._parts)
            self._parts = []
        return method, header, payload  # type: ignore[return-value]  # set with header

    def unexpected(self) -> UnexpectedFrame:
        """The error for a method frame while content is expected (505)."""
        if self.method is None:
            return UnexpectedFrame('expected method frame, got non method frame instead')
        if self.header is None:
            return self._error(UnexpectedFrame(
                f'expected content header for class {self._class_id}, got non content '
                f'header frame instead'))
        return self._error(
            UnexpectedFrame('expected content body, got non content body frame instead'))

    def reset(self) -> None:
        """Forget a content in progress (the channel is closing)."""
        self.method = self.header = None
        self._parts = []

    # --- errors (off the common path) -------------------------------------------
    def _misplaced_header(self) -> UnexpectedFrame:
        if self.method is None:
            return UnexpectedFrame('expected method frame, got non method frame instead')
        return self._error(
            UnexpectedFrame('expected content body, got non content body frame instead'))

    def _misplaced_body(self) -> UnexpectedFrame:
        if self.method is None:
            return UnexpectedFrame('expected method frame, got non method frame instead')
        return self.unexpected()

    def _bad_header(self, class_id: int) -> UnexpectedFrame:
        expected = self._class_id
        if class_id != expected:
            return self._error(UnexpectedFrame(
                f'expected content header for class {expected}, got one for class '
                f'{class_id} instead'))
        return self._error(UnexpectedFrame(
            f'expected content header for class {expected}, got non content header frame '
            f'instead'))

    def _error(self, exc: E) -> E:
        exc.with_method(self._class_id, self._index & 0xFFFF)
        return exc
