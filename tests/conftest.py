"""Fixtures shared by every test folder, and the suite's hypothesis settings."""

from hypothesis import settings

from tests.support.bus import bus
from tests.support.ckan import ckan, ckan_local

# Examples are checked for correctness, not speed: a loaded two-core machine must not turn
# a slow example into a failure.
settings.register_profile("tabadul", deadline=None)
settings.load_profile("tabadul")

__all__ = ["bus", "ckan", "ckan_local"]
