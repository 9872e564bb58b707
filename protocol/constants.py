"""Wire constants of AMQP 0-9-1."""

from __future__ import annotations

PROTOCOL_HEADER = b'AMQP\x00\x00\x09\x01'
#: Accepted as 0-9-1 too, as RabbitMQ does.
PROTOCOL_HEADER_0_9 = b'AMQP\x01\x01\x00\x09'

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b'\xce'
#: type (1) + channel (2) + size (4) + frame-end (1)
FRAME_OVERHEAD = 8
#: Before tune-ok every peer must accept frames of this size (spec 4.2.3).
FRAME_MIN_SIZE = 4096

HEARTBEAT_FRAME = b'\x08\x00\x00\x00\x00\x00\x00\xce'

CLASS_CONNECTION = 10
CLASS_CHANNEL = 20
CLASS_EXCHANGE = 40
CLASS_QUEUE = 50
CLASS_BASIC = 60
CLASS_CONFIRM = 85
CLASS_TX = 90


def method_index(class_id: int, method_id: int) -> int:
    """The 32-bit index pamqp and the wire use for a method."""
    return (class_id << 16) | method_id


# Hot-path method indexes.
BASIC_PUBLISH = method_index(60, 40)
BASIC_DELIVER = method_index(60, 60)
BASIC_ACK = method_index(60, 80)
BASIC_REJECT = method_index(60, 90)
BASIC_NACK = method_index(60, 120)
