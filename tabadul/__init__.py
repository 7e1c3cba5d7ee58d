"""Tabadul's composition root: settings, CLI, management API, console."""
