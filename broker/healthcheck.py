"""``python -m leveret.broker.healthcheck``: exit 0 if the broker answers AMQP.

Sends the protocol header and expects a connection.start method frame,
then closes; used by the container's HEALTHCHECK.
"""

from __future__ import annotations

import os
import socket
import sys


def check(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b'AMQP\x00\x00\x09\x01')
            head = sock.recv(11)
    except OSError:
        return False
    # method frame on channel 0 carrying class 10 method 10 (connection.start)
    return len(head) >= 11 and head[0] == 1 and head[7:11] == b'\x00\x0a\x00\x0a'


def main() -> int:
    host = os.environ.get('LEVERET_HEALTHCHECK_HOST', '127.0.0.1')
    port = int(os.environ.get('LEVERET_PORT', '5672'))
    ok = check(host, port)
    print('ok' if ok else 'broker not answering', file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
