"""Keep CPython's full collections short when the broker holds many objects.

A full (generation 2) collection of the cyclic GC walks every tracked object
that is not frozen, holding the GIL, so the event loop stands still meanwhile:
with 500,000 messages in memory one took 250-300 ms on the 2-core reference
machine, and a fill of that size ran several of them (while they found
nothing: messages hold no cycles).

The policy: right after a full collection, when the survivors are many, they
are frozen (:func:`gc.freeze`): later full collections walk only what was
created since. Freezing right after a collection freezes no garbage. A frozen
object that dies is still freed by its reference count; only a reference
cycle formed among frozen objects waits: once most of what was frozen is gone
(the messages were consumed) and the rest is cheap to walk, everything is
unfrozen again, and the next full collection looks at all of it.
"""

from __future__ import annotations

import gc
from typing import Any

#: Survivors of a full collection above which they are frozen (a walk of
#: this many objects takes some 25-35 ms on the reference machine).
FREEZE_AT = 100_000
#: Unfreeze when the frozen objects and the survivors together are fewer...
SCAN_CHEAP = 200_000
#: ...and at most this share of what the last freeze left is still frozen.
UNFREEZE_SHARE = 0.5


class CollectionPolicy:
    """Installed once per process (:meth:`install`); :meth:`uninstall` at stop."""

    def __init__(self) -> None:
        #: The freeze count right after this policy last froze (or at install).
        self.frozen_after_freeze = 0
        self.freezes = 0
        self.unfreezes = 0

    def install(self) -> None:
        self.frozen_after_freeze = gc.get_freeze_count()
        gc.callbacks.append(self._after_collection)

    def uninstall(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != 'stop' or info['generation'] != 2:
            return
        survivors = len(gc.get_objects(generation=2))
        frozen = gc.get_freeze_count()
        if survivors > FREEZE_AT:
            gc.freeze()
            self.frozen_after_freeze = gc.get_freeze_count()
            self.freezes += 1
        elif (frozen + survivors < SCAN_CHEAP
              and frozen < self.frozen_after_freeze * UNFREEZE_SHARE):
            gc.unfreeze()
            self.frozen_after_freeze = 0
            self.unfreezes += 1
