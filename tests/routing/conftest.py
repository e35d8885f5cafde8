"""The rollout state machine on moto, its Lambda steps scripted (tests/routing/machine.py): one per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.routing.machine import Machine, deployed


@pytest.fixture(scope="module")
def machine() -> Iterator[Machine]:
    with deployed() as scripted:
        yield scripted
