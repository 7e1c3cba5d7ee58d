"""load_ca, the one way every front end opens the operator's CA."""

import pytest

from exchange import CAStore, KeyStoreError
from tabadul._services import CA_PASSPHRASE_ENV, CaUnavailable, load_ca

PASSPHRASE = "operator ca passphrase"


def test_a_folder_without_a_ca_is_no_ca_before_any_passphrase(tmp_path, monkeypatch):
    """No ca.key: ``no-ca``, and nobody is asked for a passphrase."""
    monkeypatch.delenv(CA_PASSPHRASE_ENV, raising=False)
    with pytest.raises(CaUnavailable) as raised:
        load_ca(tmp_path, ask=pytest.fail)
    assert raised.value.code == "no-ca"


def test_the_passphrase_comes_from_the_environment_else_from_ask(tmp_path, monkeypatch):
    """$TABADUL_CA_PASSPHRASE first; without it ``ask``, else ``ca-passphrase``; a wrong one
    is the key store's error."""
    CAStore.init(tmp_path, "MA", PASSPHRASE.encode())
    monkeypatch.setenv(CA_PASSPHRASE_ENV, PASSPHRASE)
    assert load_ca(tmp_path, ask=pytest.fail).instance == "MA"
    monkeypatch.delenv(CA_PASSPHRASE_ENV)
    assert load_ca(tmp_path, ask=PASSPHRASE.encode).instance == "MA"
    with pytest.raises(CaUnavailable) as raised:
        load_ca(tmp_path)
    assert raised.value.code == "ca-passphrase"
    assert CA_PASSPHRASE_ENV in raised.value.message
    with pytest.raises(KeyStoreError):
        load_ca(tmp_path, ask=lambda: b"wrong")
