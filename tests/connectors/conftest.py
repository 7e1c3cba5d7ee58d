"""Fixtures of the connector tests on the in-memory transport."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors import MemoryBroker
from tests.support.federation import Federation, build_federation


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


@pytest.fixture
def fed(tmp_path, broker) -> Iterator[Federation]:
    """Four connectors on the in-memory broker, started."""
    federation = build_federation(tmp_path, broker.transport)
    yield federation
    federation.bus.stop()
