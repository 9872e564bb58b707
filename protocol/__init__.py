"""AMQP 0-9-1 wire layer, sans-IO: bytes in, frames and methods out.

No sockets, no asyncio: the broker feeds bytes to :class:`FrameReader` and
writes the bytes the codec functions return.  pamqp is the reference codec;
:mod:`leveret.protocol.codec` is the hand-written fast path for per-message methods.
"""

from . import codec, constants, errors, methods, properties
from .frames import FrameReader

__all__ = ['FrameReader', 'codec', 'constants', 'errors', 'methods', 'properties']
