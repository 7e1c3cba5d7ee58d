import json
import unicodedata

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from exchange import IdentityError, Malformed, MemberId, SubsystemId, canonical
from exchange._canonical import canonical_record


def test_subsystem_identity_round_trips():
    """A four-part identity parses into its parts and prints back the same."""
    ident = SubsystemId.parse("MA/GOV/MEF/CUSTOMS")
    assert (ident.instance, ident.member_class, ident.member, ident.subsystem) == (
        "MA",
        "GOV",
        "MEF",
        "CUSTOMS",
    )
    assert str(ident) == "MA/GOV/MEF/CUSTOMS"
    assert ident.member_id == MemberId.parse("MA/GOV/MEF")
    assert ident.slug == "MA.GOV.MEF.CUSTOMS"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("MA/GOV/MEF", "must have 4 parts"),
        ("MA/GOV/MEF/CUSTOMS/X", "it has 5"),
        ("MA//MEF/CUSTOMS", "member class ''"),
        ("MA/GOV/MEF/CUS TOMS", "subsystem code 'CUS TOMS'"),
        ("MA/GOV/-MEF/CUSTOMS", "member code '-MEF'"),
        ("MA/GOV/MEF/" + "X" * 65, "1-64 letters"),
    ],
)
def test_bad_identities_say_what_is_wrong(text, fragment):
    """Each malformed identity is refused with a message naming the faulty part."""
    with pytest.raises(IdentityError) as info:
        SubsystemId.parse(text)
    assert fragment in info.value.message
    assert info.value.code == "invalid-identity"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _nfc(value):
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {unicodedata.normalize("NFC", k): _nfc(v) for k, v in value.items()}
    return value


@given(json_values)
def test_canonical_equals_rfc8785_after_nfc(value):
    """The fast path gives exactly the bytes of the reference RFC 8785 implementation."""
    try:
        expected = rfc8785.dumps(_nfc(value))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises(Malformed):
            canonical(value)
        return
    try:
        got = canonical(value)
    except Malformed:
        # two keys that differ only in normal form would collapse: refused, not merged
        assert _has_nfc_collision(value)
        return
    assert got == expected


def _has_nfc_collision(value):
    if isinstance(value, dict):
        normalised = {unicodedata.normalize("NFC", k) for k in value}
        if len(normalised) != len(value):
            return True
        return any(_has_nfc_collision(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nfc_collision(v) for v in value)
    return False


@given(st.dictionaries(st.text(max_size=6), st.integers(), max_size=8), st.randoms())
def test_canonical_ignores_key_order(mapping, rnd):
    """Reordering the keys of an object does not change its canonical bytes."""
    items = list(mapping.items())
    rnd.shuffle(items)
    try:
        expected = canonical(mapping)
    except Malformed:
        return
    assert canonical(dict(items)) == expected


def test_canonical_is_stable_under_unicode_forms():
    """The same Arabic and French text in NFC and NFD forms canonicalises identically."""
    text = "Société Générale — الشركة"
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert canonical({"name": text, nfd: 1}) == canonical(
        {"name": nfd, unicodedata.normalize("NFC", nfd): 1}
    )
    assert json.loads(canonical({"name": nfd}))["name"] == unicodedata.normalize("NFC", text)


def test_canonical_refuses_non_json():
    """NaN, lone surrogates and non-JSON objects have no canonical form."""
    for bad in (float("nan"), "\ud800", {1: "x"}, object()):
        with pytest.raises(Malformed):
            canonical(bad)


def test_canonical_escapes_match_rfc8785_for_every_special_character():
    """Control characters, quotes, DEL, line separators and astral characters are written
    exactly as RFC 8785 writes them (the fast path's escaping is that of the RFC)."""
    specials = [chr(c) for c in range(0x80)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600"]
    for ch in specials:
        value = {"k" + ch: ch, "x": [ch, 1, None, True]}
        assert canonical(value) == rfc8785.dumps(value), repr(ch)


@given(
    st.dictionaries(
        st.text(max_size=6),
        st.none() | st.text() | st.integers(min_value=-(2**60), max_value=2**60),
        max_size=8,
    )
)
def test_record_fast_path_equals_canonical(record):
    """The log records' fast path writes exactly the canonical bytes (or refuses alike)."""
    try:
        expected = canonical(record)
    except Malformed:
        with pytest.raises(Malformed):
            canonical_record(record)
        return
    assert canonical_record(record) == expected
