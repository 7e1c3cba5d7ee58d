"""Dataset tags follow CKAN 2.11's own tag rules (and refuse invisible characters) when the
dataset is registered, so an approved dataset never fails at the portal for its tags."""

from __future__ import annotations

import pytest

from governance import InvalidInput, InvalidTag, Workflow, check_tags
from tests.governance.conftest import register

REFUSED = [
    ("a/b", "characters"),
    ("x" * 150, "length"),
    ("x" * 101, "length"),
    ("a", "length"),
    ("<script>", "characters"),
    ("tag;drop", "characters"),
    ("50%", "characters"),
    ("ab\u202ecd", "invisible"),  # RIGHT-TO-LEFT OVERRIDE
    ("ab\u2066cd", "invisible"),  # LEFT-TO-RIGHT ISOLATE
    ("ab\u200fcd", "invisible"),  # RIGHT-TO-LEFT MARK
    ("ab\u061ccd", "invisible"),  # ARABIC LETTER MARK
    ("ab\u200bcd", "invisible"),  # ZERO WIDTH SPACE
    ("ab\u200dcd", "invisible"),  # ZERO WIDTH JOINER
    ("ab\ufeffcd", "invisible"),  # BYTE ORDER MARK
    ("ab\u00adcd", "invisible"),  # SOFT HYPHEN
    ("ab\u00a0cd", "invisible"),  # NO-BREAK SPACE
    ("ab\u3164cd", "invisible"),  # HANGUL FILLER (a letter that draws nothing)
    ("ab\tcd", "invisible"),
    ("tag\n", "invisible"),  # CKAN's own pattern lets a final newline through
    ("ab\x00cd", "invisible"),
    ("ab\ud800cd", "invisible"),  # a lone surrogate
    ("x\u0301y", "characters"),  # a combining mark that composes with nothing
    ("", "length"),
    ("   ", "length"),
]


@pytest.mark.parametrize(("tag", "rule"), REFUSED)
def test_a_tag_ckan_refuses_is_refused_naming_the_tag_and_the_rule(tag, rule):
    """Each refused tag raises InvalidTag (code invalid-tag, an InvalidInput) naming the tag's
    position and the rule it breaks."""
    with pytest.raises(InvalidTag) as caught:
        check_tags(["fine", tag])
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.code == "invalid-tag"
    assert (error.rule, error.index) == (rule, 1)
    assert error.as_dict()["rule"] == rule
    assert "tag 2" in error.message
    # the message never carries a character that would reorder or hide what follows it
    assert not any(ch in error.message for ch in "\u202e\u2066\u200f\u061c\u200b\ufeff\n\t")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["water", "open data", "v1.2", "ab_cd-ef"], ["water", "open data", "v1.2", "ab_cd-ef"]),
        (["مياه", "٣٤", "ÉTÉ", "santé"], ["مياه", "٣٤", "ÉTÉ", "santé"]),
        (["e\u0301te\u0301"], ["\u00e9t\u00e9"]),  # decomposed French: kept composed (NFC)
        (["  water  ", "water", "Water"], ["water", "Water"]),  # trimmed, repeats once
        (["x" * 100, "é" * 100], ["x" * 100, "é" * 100]),
        ([], []),
    ],
)
def test_tags_ckan_takes_are_kept_normalised(given, kept):
    """Letters of any script, digits, spaces, '-', '_' and '.', 2 to 100 characters, are
    kept: trimmed, in NFC, each once, in the order given."""
    assert check_tags(given) == kept


@pytest.mark.parametrize("tags", ["water", [1, 2], [None], ("ok", b"bytes")])
def test_tags_that_are_not_a_list_of_texts_are_refused(tags):
    """A single string (not a list) or a non-text item is refused as invalid input."""
    with pytest.raises(InvalidInput):
        check_tags(tags)


@pytest.mark.parametrize(("tag", "rule"), [("a/b", "characters"), ("ab\u202ecd", "invisible")])
def test_registration_refuses_a_bad_tag_and_registers_nothing(flow: Workflow, tag, rule):
    """register_dataset refuses the tag before anything is written: no dataset, no entry."""
    entries = len(flow.audit.entries())
    with pytest.raises(InvalidTag) as caught:
        flow.register_dataset(
            "amina",
            "tariffs",
            title={"fr": "Tarif douanier"},
            description={"fr": "Droits"},
            source="exports/tariffs.csv",
            table_schema={"fields": [{"name": "code", "type": "string"}]},
            licence="ODbL-1.0",
            update_frequency="yearly",
            tags=["customs", tag],
        )
    assert caught.value.rule == rule
    assert flow.datasets() == []
    assert len(flow.audit.entries()) == entries


def test_registration_keeps_the_normalised_tags(flow: Workflow):
    """The tags stored are the normalised ones check_tags returns."""
    register(flow)
    assert flow.dataset("tariffs").tags == ("customs", "tariff")
