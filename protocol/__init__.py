"""AMQP 0-9-1 wire layer, sans-IO: bytes in, frames and methods out.

No sockets, no asyncio: the broker feeds bytes to :class:`FrameReader` and
writes the bytes the codec functions return.  pamqp is the reference codec;
:mod:`leveret.protocol.codec` packs every hand-written frame (the per-message
fast path), :mod:`leveret.protocol.assembler` puts a method and its content
frames together, :mod:`leveret.protocol.states` holds the connection and
channel state machines.  Nothing here imports the broker or the client.
"""

from . import assembler, codec, constants, errors, methods, properties, states
from .frames import FrameReader

__all__ = ['FrameReader', 'assembler', 'codec', 'constants', 'errors', 'methods', 'properties',
           'states']
