"""The exchange core refuses, with a coded error and before anything is written, identities
and validity periods it cannot honour: an instance code that is not one identity part (or
too long for the root certificate's name), a subsystem identity longer than a certificate's
common name, certificate validities outside 1 day to a century, key overlaps that are
negative, endless or not numbers, and revocation needles that are no serial."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest

from exchange import (
    CAStore,
    CertificateAuthority,
    CertificateError,
    IdentityError,
    InvalidPeriod,
    KeyStore,
    SubsystemId,
    overlap_hours,
    parse_instance,
    validity_days,
)

BAD_INSTANCES = ["", " ", "MA/GOV", "M A", "M\u202eA", "x" * 300, "../x", "a\x00b", "MA\n", "-MA"]


@pytest.mark.parametrize("instance", BAD_INSTANCES)
def test_an_instance_code_is_one_identity_part(instance):
    """parse_instance refuses what is not 1-64 letters, digits, '-', '_', '.' (alphanumeric
    at both ends), with invalid-identity; so do CertificateAuthority.create and
    CAStore.init, which then write nothing."""
    with pytest.raises(IdentityError) as caught:
        parse_instance(instance)
    assert caught.value.code == "invalid-identity"
    with pytest.raises(IdentityError):
        CertificateAuthority.create(instance)


def test_an_instance_code_must_fit_the_root_certificate_name(tmp_path: Path):
    """'Tabadul Root CA <instance>' is the root's common name (64 characters at most): a
    longer instance is refused before any file is made."""
    assert parse_instance("M" * 64) == "M" * 64
    CertificateAuthority.create("M" * 48)
    with pytest.raises(IdentityError, match="48"):
        CAStore.init(tmp_path / "ca", "M" * 49, b"secret")
    assert not (tmp_path / "ca").exists()


def test_a_subsystem_identity_fits_a_certificate_common_name():
    """A subsystem identity is a certificate's common name: at most 64 characters."""
    fits = "MA/GOV/MEF/" + "X" * 53
    assert str(SubsystemId.parse(fits)) == fits
    with pytest.raises(IdentityError, match="64"):
        SubsystemId.parse(fits + "X")


@pytest.mark.parametrize("days", [0, -1, 36501, 10**12, True, 1.5])
def test_certificate_validity_is_a_day_to_a_century(tmp_path: Path, days):
    """validity_days refuses anything but a whole number of days from 1 to 36500
    (invalid-period); the CA refuses it on creation and on issue, writing nothing."""
    with pytest.raises(InvalidPeriod) as caught:
        validity_days(days)
    assert caught.value.code == "invalid-period"
    with pytest.raises(InvalidPeriod):
        CAStore.init(tmp_path / "ca", "MA", b"secret", days=days)
    assert not (tmp_path / "ca").exists()
    ca = CertificateAuthority.create("MA")
    keys = KeyStore(tmp_path / "keys", b"secret")
    keys.generate(SubsystemId.parse("MA/GOV/MEF/CUSTOMS"))
    _, _, signing, _ = keys.public_keys()
    with pytest.raises(InvalidPeriod):
        ca.issue(SubsystemId.parse("MA/GOV/MEF/CUSTOMS"), signing, days=days)


def test_certificate_validity_bounds_are_accepted():
    """One day and a century are both fine."""
    assert validity_days(1) == timedelta(days=1)
    assert validity_days(36500) == timedelta(days=36500)
    assert CertificateAuthority.create("MA", days=36500).certificate is not None


@pytest.mark.parametrize("hours", [-1, -0.001, 8761, 1e308, math.nan, math.inf, -math.inf])
def test_key_overlap_is_zero_hours_to_a_year(tmp_path: Path, hours):
    """overlap_hours refuses negative, longer than a year, NaN and infinite overlaps
    (invalid-period); KeyStore.generate refuses such an overlap before writing keys."""
    with pytest.raises(InvalidPeriod):
        overlap_hours(hours)
    keys = KeyStore(tmp_path / "keys", b"secret")
    with pytest.raises(InvalidPeriod):
        keys.generate(SubsystemId.parse("MA/GOV/MEF/CUSTOMS"), overlap=timedelta(days=-1))
    with pytest.raises(InvalidPeriod):
        keys.generate(SubsystemId.parse("MA/GOV/MEF/CUSTOMS"), overlap=timedelta(days=366))
    assert not (tmp_path / "keys").exists()


def test_key_overlap_bounds_are_accepted():
    assert overlap_hours(0) == timedelta(0)
    assert overlap_hours(8760) == timedelta(days=365)


@pytest.mark.parametrize("needle", ["", "0x", "   ", "sha256:", "zz", "-1", "x" * 300])
def test_revoking_by_something_that_is_no_serial_is_a_certificate_error(tmp_path, needle):
    """A revocation needle that is neither a hex serial nor a sha256: fingerprint is refused
    with invalid-certificate, never a ValueError."""
    store = CAStore.init(tmp_path / "ca", "MA", b"secret")
    with pytest.raises(CertificateError):
        store.revoke(needle, "lost")
