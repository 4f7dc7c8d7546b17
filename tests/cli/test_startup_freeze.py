"""`wasmwiz serve` moves what start-up built out of the cyclic collector's reach."""

from __future__ import annotations

import gc

from wasmwiz.cli.serve import freeze_startup_objects


class Node:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_garbage_is_not() -> None:
    assert gc.get_freeze_count() == 0
    gc.disable()  # nothing collects the cycle below but the function under test
    try:
        Node()  # a cycle with no other reference: garbage before the freeze
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # back into the oldest generation, where get_objects sees them
        gc.enable()
    assert frozen > 1000  # this process's modules, classes and functions
    # The garbage was collected first, not frozen with the rest for good.
    assert not any(type(item) is Node for item in gc.get_objects())
