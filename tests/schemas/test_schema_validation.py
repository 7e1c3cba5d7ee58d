"""Validation of payloads against the shipped schemas: reports, paths, formats, fast path."""

from __future__ import annotations

import copy
import re

import pytest

from schemas import (
    UnknownType,
    UnknownVersion,
    ValidationIssue,
    ValidationReport,
    default_registry,
    validate,
)
from schemas._formats import is_date, is_date_time, is_email
from schemas._validation import json_path

TYPES = default_registry().types()


@pytest.mark.parametrize("type_name", TYPES)
def test_every_shipped_type_accepts_its_example(registry, example, type_name):
    """Each shipped type has a realistic example that its latest schema accepts."""
    report = registry.validate(type_name, None, example(type_name))
    assert report == ValidationReport(ok=True, errors=())


def test_customs_example_is_valid_in_both_versions(registry, example):
    """The 1.0.0 example of customs.declaration-lodged stays valid under 1.1.0."""
    payload = example("customs.declaration-lodged")
    assert validate("customs.declaration-lodged", "1.0.0", payload).ok
    assert validate("customs.declaration-lodged", "1.1.0", payload).ok


def test_new_optional_field_is_only_accepted_by_the_newer_version(example):
    """The declarant added in 1.1.0 is refused by 1.0.0 and accepted by 1.1.0."""
    payload = example("customs.declaration-lodged")
    payload["declarant"] = {"broker_id": "CB01234", "name": "Transit Express"}
    old = validate("customs.declaration-lodged", "1.0.0", payload)
    assert not old.ok
    assert [(e.path, e.keyword) for e in old.errors] == [("$", "additionalProperties")]
    assert validate("customs.declaration-lodged", "1.1.0", payload).ok


def test_every_error_is_reported_with_its_json_path_sorted(example):
    """All errors come back at once, each with its JSON path, sorted by path (items[2] < [10])."""
    payload = example("customs.declaration-lodged")
    item = payload["items"][0]
    payload["items"] = [copy.deepcopy(dict(item, line=n + 1)) for n in range(11)]
    payload["items"][2]["hs_code"] = "12345"
    payload["items"][10]["hs_code"] = "12AB56"
    payload["items"][2]["customs_value"]["currency"] = "mad"
    del payload["office_code"]
    payload["regime"] = "smuggling"
    report = validate("customs.declaration-lodged", "1.1.0", payload)
    assert not report.ok
    assert [(e.path, e.keyword) for e in report.errors] == [
        ("$", "required"),
        ("$.items[2].customs_value.currency", "pattern"),
        ("$.items[2].hs_code", "pattern"),
        ("$.items[10].hs_code", "pattern"),
        ("$.regime", "enum"),
    ]
    assert "office_code" in report.errors[0].message


def test_messages_do_not_repeat_payload_values(example):
    """Issue messages name the rule, not the offending value (it may be personal data)."""
    payload = example("civil.person-lookup.request")
    payload["cin"] = "SECRETVALUE"
    report = validate("civil.person-lookup.request", "1.0.0", payload)
    assert report.errors == (
        ValidationIssue("$.cin", "does not match pattern '^[A-Z]{1,2}[0-9]{1,6}$'", "pattern"),
    )
    assert "SECRETVALUE" not in repr(report.as_dict())


def test_report_as_dict_shape(example):
    """A report serialises to ok plus a list of path/message/keyword dicts."""
    report = validate("civil.person-lookup.request", "1.0.0", {"purpose": "passport-issuance"})
    assert report.as_dict() == {
        "ok": False,
        "errors": [{"path": "$", "message": "'cin' is a required property", "keyword": "required"}],
    }


def test_one_of_branches_are_enforced(example):
    """A lookup response saying found=false may not carry a person."""
    payload = example("civil.person-lookup.response")
    payload["found"] = False
    report = validate("civil.person-lookup.response", "1.0.0", payload)
    assert [(e.path, e.keyword) for e in report.errors] == [("$", "oneOf")]
    assert validate("civil.person-lookup.response", "1.0.0", {"found": False}).ok


def test_trailing_newline_does_not_satisfy_a_dollar_anchor(example):
    """``$`` means end of string (ECMA-262), not "before a final newline" (Python)."""
    payload = example("civil.person-lookup.request")
    payload["cin"] = "BE123456\n"
    report = validate("civil.person-lookup.request", "1.0.0", payload)
    assert [(e.path, e.keyword) for e in report.errors] == [("$.cin", "pattern")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2024-02-29", True),
        ("2023-02-29", False),
        ("2023-13-01", False),
        ("20230101", False),
        ("2023-01-01T00:00:00Z", False),
        ("\u0662\u0660\u0662\u0663-\u0660\u0661-\u0660\u0661", False),  # Arabic-Indic digits
    ],
)
def test_date_format_is_checked_identically(registry, example, value, ok):
    """A ``date`` must name a real day, in ASCII digits, in both validators."""
    payload = example("treasury.payment-executed")
    payload["value_date"] = value
    compiled = registry.compiled("treasury.payment-executed")
    assert compiled.is_valid_fast(payload) is ok
    assert compiled.is_valid_detailed(payload) is ok
    assert is_date(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-11-04T15:00:00Z", True),
        ("2026-11-04t15:00:00z", True),
        ("2026-11-04T15:00:00.123456+01:00", True),
        ("2026-11-04T15:00:00", False),
        ("2026-11-04 15:00:00Z", False),
        ("2026-11-04T25:00:00Z", False),
        ("2026-02-30T10:00:00Z", False),
        ("2026-11-04T15:00:60Z", False),
    ],
)
def test_date_time_format_is_checked_identically(registry, example, value, ok):
    """A ``date-time`` needs an offset and real values, in both validators."""
    payload = example("treasury.payment-executed")
    payload["executed_at"] = value
    compiled = registry.compiled("treasury.payment-executed")
    assert compiled.is_valid_fast(payload) is ok
    assert compiled.is_valid_detailed(payload) is ok
    assert is_date_time(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("analyst@tgr.gov.ma", True),
        ("a.b+c@example.org", True),
        ("analyst@localhost", False),
        ("analyst", False),
        ("a@b@c.ma", False),
        ("an alyst@tgr.gov.ma", False),
    ],
)
def test_email_format_is_checked_identically(registry, example, value, ok):
    """An ``email`` is local@domain.tld, judged the same by both validators."""
    payload = example("treasury.suspicious-transaction-alert")
    payload["analyst_email"] = value
    compiled = registry.compiled("treasury.suspicious-transaction-alert")
    assert compiled.is_valid_fast(payload) is ok
    assert compiled.is_valid_detailed(payload) is ok
    assert is_email(value) is ok


def test_formats_ignore_non_strings():
    """Format checks pass non-string values through (``type`` is what rejects them)."""
    assert is_date(3)
    assert is_date_time(None)
    assert is_email(["x"])


def test_floats_are_refused_for_amounts(example):
    """Money amounts are decimal strings; a JSON number is refused."""
    payload = example("treasury.payment-executed")
    payload["amount"]["amount"] = 6250.0
    report = validate("treasury.payment-executed", "1.0.0", payload)
    assert [(e.path, e.keyword) for e in report.errors] == [("$.amount.amount", "type")]


def test_booleans_are_not_integers(example):
    """``true`` is not accepted where an integer is expected, by either validator."""
    payload = example("tax.declaration-filed")
    payload["period"]["year"] = True
    report = validate("tax.declaration-filed", "1.0.0", payload)
    assert [(e.path, e.keyword) for e in report.errors] == [("$.period.year", "type")]


def test_validation_does_not_modify_the_payload(example):
    """Validating never fills defaults or otherwise mutates the payload."""
    payload = example("customs.declaration-lodged")
    before = repr(payload)
    validate("customs.declaration-lodged", None, payload)
    assert repr(payload) == before


def test_slow_validator_wins_when_the_fast_one_is_stricter(registry, example, monkeypatch):
    """If the fast path says invalid but jsonschema finds nothing, the payload is valid."""
    compiled = registry.compiled("civil.person-lookup.request")

    class AlwaysInvalid:
        def is_valid(self, payload: object) -> bool:
            del payload
            return False

    monkeypatch.setattr(compiled, "_fast", AlwaysInvalid())
    report = compiled.validate(example("civil.person-lookup.request"))
    assert report == ValidationReport(ok=True)


def test_unknown_type_lists_registered_types():
    """An unknown type raises UnknownType whose message lists what exists."""
    with pytest.raises(UnknownType, match=re.escape("civil.person-lookup.request")) as info:
        validate("civil.marriage-registered", "1.0.0", {})
    assert info.value.as_dict()["code"] == "unknown-message-type"
    assert "civil.birth-registered" in info.value.as_dict()["known"]  # type: ignore[operator]


def test_unknown_version_lists_registered_versions():
    """An unknown version raises UnknownVersion listing the type's versions."""
    with pytest.raises(UnknownVersion, match=r"registered versions: 1\.0\.0, 1\.1\.0") as info:
        validate("customs.declaration-lodged", "2.0.0", {})
    assert info.value.code == "unknown-schema-version"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((), "$"),
        (("items", 2, "hs_code"), "$.items[2].hs_code"),
        (("odd key", 0), "$['odd key'][0]"),
        (("it's",), "$['it\\'s']"),
    ],
)
def test_json_path_rendering(parts, expected):
    """Paths render as JSONPath: dotted identifiers, bracketed indices and odd keys."""
    assert json_path(parts) == expected


def test_values_no_json_document_holds_are_reported_not_raised(registry, example):
    """A caller handing Python values that JSON cannot hold (a number key, an object) gets
    a report; the native validator refuses them and jsonschema names the place."""
    compiled = registry.compiled("civil.person-lookup.request")
    keyed = {**example("civil.person-lookup.request"), 1: "x"}
    assert not compiled.is_valid_fast(keyed)
    assert [e.keyword for e in compiled.validate(keyed).errors] == ["additionalProperties"]
    odd = {**example("civil.person-lookup.request"), "cin": object()}
    assert [(e.path, e.keyword) for e in compiled.validate(odd).errors] == [("$.cin", "type")]
