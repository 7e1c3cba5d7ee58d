"""Shared fixtures for the schema registry tests: one realistic valid payload per shipped type."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from schemas import SchemaRegistry, default_registry

# one realistic valid payload per shipped type: the first example in its schema file
EXAMPLES: dict[str, dict[str, Any]] = {
    entry.type: entry.examples[0] for entry in default_registry().entries()
}


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    """The shipped registry (loaded once per process)."""
    return default_registry()


@pytest.fixture
def example() -> Any:
    """A function returning a fresh copy of the example payload of a type."""

    def make(type_name: str) -> dict[str, Any]:
        return copy.deepcopy(EXAMPLES[type_name])

    return make
