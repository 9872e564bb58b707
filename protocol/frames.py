"""Incremental frame reader: bytes in, ``(type, channel, payload)`` out.

The reader never raises for "need more data"; it keeps the incomplete tail
and returns the frames that are complete.  Malformed framing (a wrong
frame-end octet, an oversized or unknown frame type) raises
:class:`~leveret.protocol.errors.FrameError`, which ends the connection.
"""

from __future__ import annotations

import struct

from .constants import (
    FRAME_BODY,
    FRAME_END,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_MIN_SIZE,
)
from .errors import FrameError

_HEADER = struct.Struct('>BHI')
_VALID_TYPES = frozenset((FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT))

Frame = tuple[int, int, bytes]


class FrameReader:
    """Splits a byte stream into frames, enforcing the negotiated frame_max."""

    __slots__ = ('_tail', 'frame_max')

    def __init__(self, frame_max: int = FRAME_MIN_SIZE) -> None:
        self._tail = b''
        #: Largest whole frame accepted (header and frame-end included).
        self.frame_max = frame_max

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._tail)

    def feed(self, data: bytes) -> list[Frame]:
        """Append ``data`` and return every frame now complete."""
        if self._tail:
            data = self._tail + data
        frames: list[Frame] = []
        append = frames.append
        unpack = _HEADER.unpack_from
        limit = self.frame_max
        n = len(data)
        pos = 0
        while n - pos >= 7:
            frame_type, channel, size = unpack(data, pos)
            end = pos + 7 + size
            if size + 8 > limit:
                raise FrameError(
                    f'frame size {size + 8} larger than negotiated maximum {limit}')
            if frame_type not in _VALID_TYPES:
                raise FrameError(f'invalid frame type {frame_type}')
            if end >= n:
                break
            if data[end] != FRAME_END:
                raise FrameError(
                    f'invalid frame end byte {data[end]:#04x} (expected 0xce)')
            append((frame_type, channel, data[pos + 7:end]))
            pos = end + 1
        self._tail = data[pos:] if pos < n else b''
        return frames
