"""Governance's error tree: every error has a stable code, a dict form, and its place in the
tree drawn in ``governance._errors``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import governance
from governance import GovernanceError, _errors


def _all(cls: type[GovernanceError]) -> list[type[GovernanceError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _all(sub)
    return found


def test_every_error_is_drawn_with_its_code():
    """The module docstring names every error class beside its code."""
    doc = _errors.__doc__ or ""
    for cls in _all(GovernanceError):
        line = next((ln for ln in doc.splitlines() if f" {cls.__name__} " in f" {ln} "), "")
        assert cls.code in line, cls.__name__


def test_codes_are_unique_and_exported():
    """Codes are unique, and every error is exported from governance."""
    classes = [c for c in _all(GovernanceError) if c.__module__ == "governance._errors"]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(c.__name__ in governance.__all__ for c in classes)


def test_as_dict_carries_code_and_message():
    """as_dict gives the code, the message and the error's own fields."""
    error = governance.AuditTampered(7, "the chain is broken")
    assert error.as_dict() == {
        "code": "audit-tampered",
        "message": "audit entry 7: the chain is broken",
        "seq": 7,
        "reason": "the chain is broken",
        "kind": "changed",
    }
    refused = governance.FourEyes("no", action="approve", dataset_id="d")
    assert refused.as_dict() == {
        "code": "four-eyes",
        "message": "no",
        "action": "approve",
        "dataset": "d",
    }


def test_governance_imports_without_its_pii_subpackage():
    """``import governance`` works even if ``governance.pii`` cannot be imported."""
    code = (
        "import sys; sys.modules['governance.pii'] = None; "
        "import governance; print(len(governance.__all__))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10
