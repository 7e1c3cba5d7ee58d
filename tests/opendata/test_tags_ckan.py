"""governance.check_tags against CKAN 2.11's own tag validators (run in CKAN's environment)
and against the real portal: what it keeps, CKAN takes; what CKAN takes, it keeps unless the
tag holds an invisible character."""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from governance import InvalidTag, check_tags
from tests.opendata.conftest import ROOT, csv_file

CKAN_PYTHON = ROOT / "var" / "ckan" / "venv" / "bin" / "python"
# Reads a JSON list of tags on stdin, prints whether each passes CKAN's validators.
CKAN_VERDICTS = """
import json, sys
from ckan.lib.navl.dictization_functions import Invalid
from ckan.logic.validators import tag_length_validator, tag_name_validator

def passes(tag):
    try:
        tag_name_validator(tag_length_validator(tag, {}), {})
    except Invalid:
        return False
    return True

print(json.dumps([passes(tag) for tag in json.load(sys.stdin)]))
"""
BLOCKS = [
    (0x0000, 0x0250),  # ASCII, Latin-1, Latin Extended
    (0x0300, 0x0370),  # combining marks
    (0x0590, 0x0900),  # Hebrew, Arabic, Syriac, Thaana, NKo...
    (0x1100, 0x1200),  # Hangul Jamo (with its fillers)
    (0x180B, 0x1810),  # Mongolian variation selectors, vowel separator
    (0x2000, 0x2070),  # General Punctuation: spaces, zero-width, bidi controls
    (0x2800, 0x2801),  # Braille blank
    (0x3000, 0x3170),  # CJK punctuation, Hangul filler
    (0xFB50, 0xFE00),  # Arabic presentation forms A
    (0xFE00, 0xFE10),  # variation selectors
    (0xFE70, 0xFF00),  # Arabic presentation forms B, byte order mark
    (0xFFA0, 0xFFA1),  # halfwidth Hangul filler
    (0xFFF0, 0x10000),  # specials
    (0x1D173, 0x1D17B),  # musical format characters
    (0xE0000, 0xE0080),  # tag characters
]


def _ckan_verdicts(tags: list[str]) -> list[bool]:
    assert CKAN_PYTHON.is_file(), f"{CKAN_PYTHON} is missing: scripts/ckan-local installs it"
    done = subprocess.run(
        [str(CKAN_PYTHON), "-c", CKAN_VERDICTS],
        input=json.dumps(tags),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    verdicts: list[bool] = json.loads(done.stdout)
    return verdicts


def _verdict(tag: str) -> tuple[str | None, str]:
    """(the tag check_tags keeps, "") or (None, the rule it breaks)."""
    try:
        (kept,) = check_tags([tag])
    except InvalidTag as refused:
        return None, refused.rule
    return kept, ""


def _code_points() -> list[int]:
    chosen = {cp for start, stop in BLOCKS for cp in range(start, stop)}
    rng = random.Random(2026)  # noqa: S311 - a fixed sample, not a secret
    chosen |= {rng.randrange(0x110000) for _ in range(4000)}
    return sorted(cp for cp in chosen if not 0xD800 <= cp < 0xE000)  # JSON has no lone halves


def test_every_kept_tag_passes_ckans_validators_and_only_invisibles_are_stricter(ckan_local):
    """For one character inside a tag, at either end, and at the length limits: a tag
    check_tags keeps passes CKAN's tag_length_validator and tag_name_validator, and a tag
    those validators pass is kept unless it holds an invisible or control character."""
    samples = [f"a{chr(cp)}b" for cp in _code_points()]
    samples += [f"{chr(cp)}ab" for cp in range(0x2000, 0x2070)]
    samples += ["a", "ab", "x" * 100, "x" * 101, "é" * 100, "ab\n", "  ab  ", "e\u0301t\u00e9"]
    verdicts = [_verdict(tag) for tag in samples]
    kept = [tag for tag, _ in verdicts if tag is not None]
    ckan_says = _ckan_verdicts(samples + kept)
    raw, of_kept = ckan_says[: len(samples)], ckan_says[len(samples) :]
    assert all(of_kept), [tag for tag, ok in zip(kept, of_kept, strict=True) if not ok]
    stricter = {
        rule
        for (ours, rule), ckan_takes in zip(verdicts, raw, strict=True)
        if ckan_takes and not ours
    }
    assert stricter == {"invisible"}
    assert 1000 < len(kept) < len(samples)


@pytest.mark.parametrize(
    "tags", [["مياه الشرب", "e\u0301te\u0301", "open data", "v1.2", "x" * 100, "ÉTÉ"]]
)
def test_kept_tags_publish_on_the_real_portal(ckan, publisher, dataset, tmp_path, tags):
    """A dataset with the tags check_tags keeps is published, and CKAN shows them as kept."""
    kept = check_tags(tags)
    path = csv_file(tmp_path, "station,ph\nA,7.1\n")
    schema = {"fields": [{"name": "station", "type": "string"}, {"name": "ph", "type": "number"}]}
    result = publisher.publish({**dataset, "tags": kept}, path, schema, "review-1")
    package = ckan.action.package_show(id=result.name)
    assert sorted(t["name"] for t in package["tags"]) == sorted(kept)
