"""The collection policy (broker/gc_policy.py): many survivors of a full
collection are frozen, so the next full collections walk only what is new;
once most of them are gone they are unfrozen, so a cycle among them is
collected after all."""

from __future__ import annotations

import gc
import weakref

import pytest

from leveret.broker import gc_policy
from leveret.broker.gc_policy import CollectionPolicy


class Held:
    """A tracked object, as a message is."""

    __slots__ = ('value', 'other', '__weakref__')

    def __init__(self, value: int) -> None:
        self.value = value
        self.other: Held | None = None


@pytest.fixture
def policy(monkeypatch):
    gc.unfreeze()
    gc.collect()
    # The bounds over what the test process holds already (all of it is walked).
    monkeypatch.setattr(gc_policy, 'FREEZE_AT', len(gc.get_objects()) + 20_000)
    monkeypatch.setattr(gc_policy, 'SCAN_CHEAP', 10_000_000)
    installed = CollectionPolicy()
    installed.install()
    yield installed
    installed.uninstall()
    gc.unfreeze()
    gc.collect()


def test_many_survivors_are_frozen_and_unfrozen_once_they_are_gone(policy, monkeypatch):
    count = 50_000
    # The test process's own objects are frozen too: unfreeze once half of
    # what this test adds is gone.
    others = len(gc.get_objects())
    monkeypatch.setattr(gc_policy, 'UNFREEZE_SHARE', 1 - 0.5 * count / (others + count))
    held = [Held(i) for i in range(count)]
    gc.collect()
    assert policy.freezes == 1
    assert gc.get_freeze_count() >= len(held)
    assert len(gc.get_objects(generation=2)) < 20_000     # the next walk is short

    # A cycle among frozen objects: its reference count never reaches zero.
    a, b = held[0], held[1]
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    held.clear()
    gc.collect()                         # most of what was frozen is gone: unfreeze
    assert policy.unfreezes == 1
    gc.collect()                         # and the cycle is found
    assert gone() is None


def test_few_survivors_are_not_frozen(policy):
    held = [Held(i) for i in range(1_000)]
    gc.collect()
    assert policy.freezes == 0
    assert gc.get_freeze_count() == 0
    assert held
