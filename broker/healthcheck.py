"""``python -m leveret.broker.healthcheck``: exit 0 if the broker answers AMQP.

Sends the protocol header and expects a connection.start method frame,
then closes; used by the container's HEALTHCHECK.  With the plain listener
turned off (``LEVERET_PLAIN_LISTENER=false``) it asks the amqps port
instead, over TLS without checking the certificate: it only asks whether
the broker answers.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys


def check(host: str, port: int, timeout: float = 3.0, tls: bool = False) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock: socket.socket = raw
            if tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(raw, server_hostname=host)
            sock.sendall(b'AMQP\x00\x00\x09\x01')
            head = sock.recv(11)
    except OSError:
        return False
    # method frame on channel 0 carrying class 10 method 10 (connection.start)
    return len(head) >= 11 and head[0] == 1 and head[7:11] == b'\x00\x0a\x00\x0a'


def main() -> int:
    host = os.environ.get('LEVERET_HEALTHCHECK_HOST', '127.0.0.1')
    tls = os.environ.get('LEVERET_PLAIN_LISTENER', 'true').lower() in ('false', '0', 'no')
    port = int(os.environ.get('LEVERET_TLS_PORT', '5671') if tls
               else os.environ.get('LEVERET_PORT', '5672'))
    ok = check(host, port, tls=tls)
    print('ok' if ok else 'broker not answering', file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
