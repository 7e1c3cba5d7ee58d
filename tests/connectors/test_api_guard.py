"""The connector's local API against a web page and a careless deployment: a token is
required by default, ``Host`` and ``Origin`` are checked (no DNS rebinding), bodies are
bounded, and what no receiver would take is refused with a code instead of a 202."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connectors import ConfigError, MemoryBroker, load_config
from connectors._api import create_app
from tests.connectors.test_sender_accountability import _oversized_declaration
from tests.support.federation import ALERT, LODGED, Federation, build_federation, example
from tests.support.served import Served

TAX = "MA/GOV/MEF/TAX"
TOKEN = "a-local-api-token-of-32-chars-xx"
CONFIGS = Path(__file__).resolve().parents[2] / "connectors" / "ministries" / "configs"


@pytest.fixture
def fed(tmp_path) -> Iterator[Federation]:
    federation = build_federation(tmp_path, MemoryBroker().transport)
    yield federation
    federation.bus.stop()


@pytest.fixture
def served(fed: Federation) -> Iterator[Served]:
    """Treasury's API with a token, on a real socket (so Host is what a browser sends)."""
    server = Served(create_app(fed["treasury"], token=TOKEN))
    yield server
    server.close()


def _authorised(served: Served) -> httpx.Client:
    return served.client(headers={"Authorization": f"Bearer {TOKEN}"})


def test_dns_rebinding_is_refused_by_host(served: Served):
    """A page on evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example:
    the API answers 400 host-not-allowed, even with the right token, and reads no inbox."""
    port = served.url.rsplit(":", 1)[1]
    for path in ("/inbox", "/health", "/metrics"):
        answer = _authorised(served).get(path, headers={"Host": f"evil.example:{port}"})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["code"] == "host-not-allowed"
    assert _authorised(served).get("/inbox").status_code == 200


@pytest.mark.parametrize("host", ["localhost", "[::1]", "127.0.0.1"])
def test_loopback_names_are_the_api_s_own(served: Served, host: str):
    """Loopback names, with or without a port, are accepted."""
    port = served.url.rsplit(":", 1)[1]
    for value in (host, f"{host}:{port}"):
        answer = _authorised(served).get("/health", headers={"Host": value})
        assert answer.status_code in {200, 503}, answer.text


def test_a_web_page_origin_is_refused(served: Served):
    """A request a browser makes for a page (it carries Origin) is refused 403 unless the
    origin is allowed, whatever the token."""
    answer = _authorised(served).post(
        "/messages",
        json={"type": ALERT, "to": TAX, "payload": example(ALERT)},
        headers={"Origin": "http://127.0.0.1.nip.example"},
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "origin-not-allowed"


def test_an_allowed_origin_and_host_pass(fed: Federation):
    """Names and origins configured for the deployment are accepted."""
    server = Served(
        create_app(
            fed["treasury"],
            token=TOKEN,
            hosts=("127.0.0.1", "treasury.connector.internal"),
            origins=("https://is.treasury.internal",),
        )
    )
    try:
        answer = _authorised(server).get(
            "/inbox",
            headers={
                "Host": "treasury.connector.internal",
                "Origin": "https://is.treasury.internal",
            },
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.close()


def test_the_token_is_checked_after_host(served: Served):
    """Without the token the inbox is 401; with a wrong one too."""
    assert served.client().get("/inbox").json()["code"] == "unauthorized"
    wrong = served.client(headers={"Authorization": "Bearer nope"}).get("/inbox")
    assert wrong.status_code == 401


def test_an_oversized_body_is_413_without_reading_it_all(served: Served):
    """A body over the limit is refused 413 too-large, announced or streamed."""
    big = b'{"type": "x", "payload": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    answer = _authorised(served).post(
        "/events", content=big, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "too-large"

    def chunks() -> Iterator[bytes]:
        yield b'{"type": "x", "payload": "'
        for _ in range(10):
            yield b"a" * (1024 * 1024)
        yield b'"}'

    streamed = _authorised(served).post(
        "/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "too-large"


def test_an_event_no_receiver_would_take_is_422_not_202(fed: Federation):
    """The declaration whose envelope exceeds the receive limit is refused by customs' API
    with too-large (it used to be 202, then dead-lettered as malformed by each subscriber)."""
    server = Served(create_app(fed["customs"], token=TOKEN))
    try:
        answer = _authorised(server).post(
            "/events", json={"type": LODGED, "payload": _oversized_declaration()}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "too-large"
        assert fed.recorders["tax"].seen == []
    finally:
        server.close()


# ---------------------------------------------------------------------- configuration


def _config(tmp_path: Path, api: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        'subsystem = "MA/GOV/MEF/TAX"\nkeys = "keys"\nca_certificate = "ca.pem"\n'
        f'directory = "directory.json"\n[api]\n{api}',
        "utf-8",
    )
    return path


def test_a_token_is_required_by_default(tmp_path, monkeypatch):
    """A configuration that says nothing about tokens needs $TABADUL_API_TOKEN: unset, or too
    short to be a secret, is a configuration error naming the variable and the way out."""
    monkeypatch.delenv("TABADUL_API_TOKEN", raising=False)
    config = load_config(_config(tmp_path, 'host = "127.0.0.1"\n'))
    with pytest.raises(ConfigError, match=r"\$TABADUL_API_TOKEN is not set.*allow_no_token"):
        config.api_token()
    monkeypatch.setenv("TABADUL_API_TOKEN", "short")
    with pytest.raises(ConfigError, match="fewer than 16"):
        config.api_token()
    monkeypatch.setenv("TABADUL_API_TOKEN", TOKEN)
    assert config.api_token() == TOKEN


def test_no_token_only_when_asked_for_on_loopback(tmp_path):
    """allow_no_token serves without a token on a loopback host, and is refused elsewhere."""
    config = load_config(_config(tmp_path, 'host = "127.0.0.1"\nallow_no_token = true\n'))
    assert config.api_token() is None
    with pytest.raises(ConfigError, match="only accepted on a loopback host"):
        load_config(_config(tmp_path, 'host = "0.0.0.0"\nallow_no_token = true\n'))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_configurations_require_a_token(path: Path):
    """Every example configuration asks for a token."""
    api = load_config(path).api
    assert not api.allow_no_token
    assert api.token_env == "TABADUL_API_TOKEN"
