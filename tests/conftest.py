"""Fixtures shared by every test folder."""

from tests.support.bus import bus

__all__ = ["bus"]
