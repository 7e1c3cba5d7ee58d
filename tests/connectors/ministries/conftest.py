"""Clean per-process state around each test, and fake contexts per agency."""

import pytest

from connectors.ministries import AGENCIES, tax, treasury
from tests.connectors.ministries.fakes import FakeContext


@pytest.fixture(autouse=True)
def _clean_state():
    tax.reset_state()
    treasury.reset_state()
    yield
    tax.reset_state()
    treasury.reset_state()


@pytest.fixture
def ctx_for():
    """A factory of fake contexts, one per agency key."""
    return lambda key: FakeContext(AGENCIES[key].subsystem)
