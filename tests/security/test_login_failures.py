"""Failed logins cost the failing client a growing delay, per source
address, in bounded memory; the log says who failed and how often."""

from __future__ import annotations

from pamqp import commands as C

from leveret.broker.session.logins import LoginFailures, worth_logging

from ..rawamqp import Closed, RawClient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_delay_doubles_per_failure_up_to_its_bound():
    failures = LoginFailures(Clock(), base=0.1, most=1.0)
    delays = [failures.failed('10.0.0.1')[1] for _ in range(6)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert failures.failed('10.0.0.2') == (1, 0.1)     # another address starts afresh


def test_an_address_is_forgotten_after_a_quiet_window():
    clock = Clock()
    failures = LoginFailures(clock, window=60.0)
    failures.failed('10.0.0.1')
    failures.failed('10.0.0.1')
    assert failures.failures('10.0.0.1') == 2
    clock.now += 61
    assert failures.failures('10.0.0.1') == 0
    assert failures.failed('10.0.0.1')[0] == 1


def test_memory_is_bounded_whatever_the_addresses():
    failures = LoginFailures(Clock(), addresses=100)
    for i in range(10_000):
        failures.failed(f'10.{i // 65536}.{i // 256 % 256}.{i % 256}')
    assert len(failures) == 100
    assert failures.failures('10.0.39.15') == 1        # the latest are kept
    assert failures.failures('10.0.0.0') == 0


def test_repeated_failures_are_summarised_in_the_log():
    logged = [n for n in range(1, 300) if worth_logging(n)]
    assert logged == list(range(1, 11)) + [16, 32, 64, 128, 256]


def failing_login(port: int, password: str) -> RawClient:
    client = RawClient(port)
    client.handshake(password=password, open_vhost=False)
    return client


def test_a_failed_login_is_answered_late_but_a_good_one_from_elsewhere_is_not(own_broker):
    broker = own_broker
    for attempt in range(4):
        with failing_login(broker.port, f'wrong-{attempt}') as client:
            client.expect(C.Connection.Close, 0, timeout=10)
    pending = failing_login(broker.port, 'wrong-again')      # answered after 1.6 s
    try:
        # Another address (127.0.0.2 is loopback too) logs in meanwhile.
        with RawClient(broker.port, source='127.0.0.2') as other:
            other.handshake()
            other.open_channel(1)
        # ... and was done before the failed one heard its refusal.
        pending.sock.setblocking(False)
        try:
            early = pending.sock.recv(65536)
        except BlockingIOError:
            early = None
        assert early is None
        pending.sock.setblocking(True)
        close = pending.expect(C.Connection.Close, 0, timeout=10)
        assert close.reply_code == 403
    finally:
        pending.close()
    log = broker.log()
    assert '5 failed logins from 127.0.0.1 in a row, answered after 1.6 s' in log
    assert "user 'guest': invalid credentials" in log
    assert 'wrong-' not in log                               # never a password


def test_a_client_that_cannot_hear_the_refusal_is_dropped_after_the_delay(own_broker):
    broker = own_broker
    client = RawClient(broker.port, source='127.0.0.3')
    try:
        client.handshake(password='nope', open_vhost=False, capabilities={})
        try:
            while True:
                client.read_frame(timeout=10)
        except Closed:
            pass
    finally:
        client.close()
    assert '1 failed login from 127.0.0.3 in a row' in broker.log()
