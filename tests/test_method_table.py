"""The method table tells the truth: every AMQP method has exactly one place."""

from __future__ import annotations

from pamqp import commands as C

from leveret.broker.session import methods
from leveret.protocol.constants import BASIC_ACK, BASIC_NACK, BASIC_PUBLISH, BASIC_REJECT

GROUPS = {
    'CHANNEL_METHODS': set(methods.CHANNEL_METHODS),
    'FAST_PATH': set(methods.FAST_PATH),
    'CONNECTION_METHODS': set(methods.CONNECTION_METHODS),
    'SERVER_METHODS': set(methods.SERVER_METHODS),
}


def test_every_method_is_in_exactly_one_group():
    for index, cls in C.INDEX_MAPPING.items():
        places = [name for name, group in GROUPS.items() if index in group]
        assert len(places) == 1, f'{cls.name}: {places}'
    assert set().union(*GROUPS.values()) == set(C.INDEX_MAPPING)


def test_the_fast_path_is_the_per_message_methods_and_nothing_else():
    assert methods.FAST_PATH == {BASIC_PUBLISH, BASIC_ACK, BASIC_NACK, BASIC_REJECT}


def test_connection_methods_are_class_10_and_channel_methods_are_not():
    assert {index >> 16 for index in methods.CONNECTION_METHODS} == {10}
    assert 10 not in {index >> 16 for index in methods.CHANNEL_METHODS}
