"""The CKAN fixtures live in tests/support/ckan.py (every folder's tests use them)."""

from tests.support.ckan import (
    ROOT,
    SCRIPT,
    TOKEN_FILE,
    URL,
    ckan,
    ckan_local,
    csv_file,
    dataset,
    publisher,
    run_script,
)

__all__ = [
    "ROOT",
    "SCRIPT",
    "TOKEN_FILE",
    "URL",
    "ckan",
    "ckan_local",
    "csv_file",
    "dataset",
    "publisher",
    "run_script",
]
