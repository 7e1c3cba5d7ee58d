"""A connector's TOML configuration: loading, validation errors, composition checks, and
`tabadul connector check` on keys, a CA and a directory made in tmp_path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from connectors import ConfigError
from connectors._config import check_config, directory_source, load_config
from connectors.ministries import AGENCIES
from exchange import (
    CAStore,
    CertificateAuthority,
    DirectoryDraft,
    DirectoryError,
    ExchangeError,
    KeyStore,
    SubscribeGrant,
    SubsystemId,
    issue_for,
    sign_directory,
    utcnow,
)
from tabadul.cli._connector import connector_app

TAX = "MA/GOV/MEF/TAX"
CONFIGS = Path(__file__).resolve().parents[2] / "connectors" / "ministries" / "configs"

MINIMAL = """\
subsystem = "MA/GOV/MEF/TAX"
keys = "keys"
ca_certificate = "ca/ca.pem"
directory = "directory.json"
"""


def write(folder: Path, text: str, name: str = "tax.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def directory_bytes(ca: CertificateAuthority, certificates: list[Any], serial: int = 7) -> bytes:
    draft = DirectoryDraft("MA", serial)
    subsystem = SubsystemId.parse(TAX)
    draft.members[str(subsystem.member_id)] = subsystem.member
    draft.certificates = [(cert, None) for cert in certificates]
    draft.subscribe_grants.append(SubscribeGrant(subsystem, "customs.declaration-lodged"))
    return sign_directory(draft, ca, expires=utcnow() + timedelta(days=1))


@pytest.fixture
def deployment(tmp_path, monkeypatch) -> Path:
    """A deployment folder: tax's certified keys, the CA certificate, a signed directory."""
    monkeypatch.setenv("TABADUL_KEY_PASSPHRASE", "key secret")
    monkeypatch.setenv("TABADUL_API_TOKEN", "a-local-api-token-of-32-chars-xx")
    ca = CAStore.init(tmp_path / "ca", "MA", b"ca secret")
    keys = KeyStore(tmp_path / "keys", b"key secret")
    keys.generate(SubsystemId.parse(TAX))
    certificates = issue_for(ca, keys)
    (tmp_path / "directory.json").write_bytes(directory_bytes(ca.ca, list(certificates)))
    write(tmp_path, MINIMAL)
    return tmp_path


@pytest.fixture
def cli() -> Any:
    app = typer.Typer()
    app.add_typer(connector_app, name="connector")  # as tabadul.cli mounts it
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


# ---------------------------------------------------------------------- loading


def test_valid_config_resolves_relative_paths_against_its_folder(tmp_path, monkeypatch):
    """Paths are taken from the file's folder, not the working directory; defaults fill in."""
    path = write(tmp_path / "etc", MINIMAL + '[api]\nport = 9100\ntoken_env = "TOKEN"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    folder = (tmp_path / "etc").resolve()
    assert config.subsystem == TAX
    assert config.keys == folder / "keys"
    assert config.ca_certificate == folder / "ca" / "ca.pem"
    assert config.directory == str(folder / "directory.json")
    assert config.database == str(folder / "var" / f"{config.slug}.db")
    assert config.log == str(folder / "var" / f"{config.slug}.log.sqlite")
    assert config.api.host == "127.0.0.1"
    assert config.api.port == 9100
    assert config.broker_urls == ["amqp://guest:guest@127.0.0.1:5672/%2F"]
    assert config.settings().request_timeout == 10.0
    assert config.settings().takeover_after == timedelta(minutes=2)


def test_urls_stay_as_they_are(tmp_path):
    """A directory URL and PostgreSQL locations are not taken for relative paths."""
    text = MINIMAL.replace('"directory.json"', '"https://registry.example/directory.json"')
    text += 'database = "postgresql://tabadul@db/connector"\nlog = "postgresql://tabadul@db/log"\n'
    text += "[runtime]\nprefetch = 64\nrequest_timeout = 2.5\ntakeover_after = 30\n"
    config = load_config(write(tmp_path, text))
    assert config.directory == "https://registry.example/directory.json"
    assert config.database == "postgresql://tabadul@db/connector"
    assert config.log == "postgresql://tabadul@db/log"
    assert config.settings().prefetch == 64
    assert config.settings().request_timeout == 2.5
    assert config.settings().takeover_after == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (('"MA/GOV/MEF/TAX"', '"MA/GOV/TAX"'), "subsystem", "INSTANCE/CLASS/MEMBER/SUBSYSTEM"),
        (('keys = "keys"\n', ""), "keys", "Field required"),
        (("", 'colour = "blue"\n'), "colour", "unknown setting"),
        (("", 'agency = "police"\n'), "agency", "unknown agency 'police'"),
        (("", 'agency = "civil"\n'), "agency", "MA/GOV/MOI/CIVIL-REGISTRY"),
        (("", 'broker_urls = ["http://rabbit"]\n'), "broker_urls.0", "amqp://"),
        (("", "broker_urls = []\n"), "broker_urls", "at least 1"),
        (("", 'webhook_url = "ftp://is/hook"\n'), "webhook_url", "http://"),
        (('"directory.json"', '"ftp://x/d.json"'), "directory", "file path or an http(s)"),
        (("", "[api]\nport = 70000\n"), "api.port", "less than or equal to 65535"),
        (("", '[api]\nport = "eighty"\n'), "api.port", "integer"),
        (("", "[runtime]\nprefetch = 0\n"), "runtime.prefetch", "greater than or equal to 1"),
        (("", "[runtime]\nrequest_timeout = -1\n"), "runtime.request_timeout", "greater than 0"),
    ],
)
def test_invalid_config_names_the_field(tmp_path, change, field, says):
    """Each kind of mistake is a ConfigError naming the field, not a pydantic traceback."""
    old, new = change
    text = MINIMAL.replace(old, new) if old else MINIMAL + new
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.message
    assert f"  - {field}: " in message
    assert says in message
    assert str(path) in message
    assert "pydantic" not in message
    assert info.value.code == "config-invalid"


def test_several_invalid_fields_are_all_listed(tmp_path):
    """Every invalid field is reported at once."""
    text = MINIMAL.replace('"MA/GOV/MEF/TAX"', '"nope"') + "[api]\nport = 0\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "  - subsystem: " in info.value.message
    assert "  - api.port: " in info.value.message


def test_unreadable_or_malformed_file_is_a_config_error(tmp_path):
    """A missing file and broken TOML are ConfigErrors with the file's name."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, 'subsystem = "MA/GOV/MEF/TAX\n'))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_example_configs_are_valid(path):
    """The shipped example of each agency loads, names its agency and keeps to var/."""
    config = load_config(path)
    assert config.agency == path.stem
    assert config.database == str(path.parent / "var" / f"{path.stem}.db")
    assert config.api.host == "127.0.0.1"


def test_there_is_an_example_per_agency():
    """Every built-in agency has its example configuration, each on its own API port."""
    examples = {p.stem: load_config(p) for p in CONFIGS.glob("*.toml")}
    assert set(examples) == set(AGENCIES)
    assert len({c.api.port for c in examples.values()}) == len(examples)


# ---------------------------------------------------------------------- composition checks


def test_check_loads_keys_ca_and_directory(deployment):
    """check_config proves the keys, the CA and the directory, and summarises them."""
    checked = check_config(load_config(deployment / "tax.toml"))
    summary = checked.summary()
    assert summary["subsystem"] == TAX
    assert summary["directory"] == {
        "serial": 7,
        "expires": checked.directory.expires.isoformat(),
        "fresh": True,
    }
    assert summary["subscribes"] == ["customs.declaration-lodged"]


def test_missing_passphrase_is_a_config_error(deployment, monkeypatch):
    """Without $TABADUL_KEY_PASSPHRASE the check says which variable to set."""
    monkeypatch.delenv("TABADUL_KEY_PASSPHRASE")
    with pytest.raises(ConfigError, match=r"\$TABADUL_KEY_PASSPHRASE"):
        check_config(load_config(deployment / "tax.toml"))


def test_keys_of_another_subsystem_are_refused(deployment):
    """A key folder that belongs to someone else is a ConfigError, before any connection."""
    text = MINIMAL.replace(TAX, "MA/GOV/MEF/CUSTOMS")
    with pytest.raises(ConfigError, match="holds the keys of MA/GOV/MEF/TAX"):
        check_config(load_config(write(deployment, text, "customs.toml")))


def test_directory_signed_by_another_ca_is_refused(deployment):
    """A directory that the configured CA did not sign is an exchange error."""
    stranger = CertificateAuthority.create("MA")
    (deployment / "directory.json").write_bytes(directory_bytes(stranger, []))
    with pytest.raises(ExchangeError):
        check_config(load_config(deployment / "tax.toml"))


class _Serve:
    """Serves fixed bytes (or a status) on 127.0.0.1, as a registry would."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/directory.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def registry(deployment) -> Iterator[_Serve]:
    served = _Serve((deployment / "directory.json").read_bytes())
    yield served
    served.close()


def test_directory_is_fetched_from_a_url(deployment, registry):
    """With an http URL the directory is fetched (and verified) from the registry."""
    text = MINIMAL.replace('"directory.json"', f'"{registry.url}"')
    checked = check_config(load_config(write(deployment, text)))
    assert checked.directory.serial == 7


def test_unreachable_directory_url_is_a_directory_error():
    """An HTTP error or a refused connection is a DirectoryError naming the URL."""
    missing = _Serve(b"not here", status=404)
    try:
        with pytest.raises(DirectoryError, match="HTTP 404"):
            directory_source(missing.url)()
    finally:
        missing.close()
    with pytest.raises(
        DirectoryError, match=r"cannot fetch the directory from http://127\.0\.0\.1:9/"
    ):
        directory_source("http://127.0.0.1:9/directory.json")()


def test_missing_directory_file_is_a_directory_error(tmp_path):
    """A directory file that is not there is a DirectoryError, not an OSError."""
    with pytest.raises(DirectoryError, match="cannot read the directory"):
        directory_source(str(tmp_path / "nothing.json"))()


# ---------------------------------------------------------------------- tabadul connector check


def test_cli_check_prints_a_summary(cli, deployment):
    """`tabadul connector check` loads everything but the broker and exits 0."""
    result = cli("connector", "check", "--config", str(deployment / "tax.toml"))
    assert result.exit_code == 0, result.output
    assert "MA/GOV/MEF/TAX: configuration" in result.output
    assert "serial 7" in result.output
    assert "customs.declaration-lodged" in result.output
    as_json = cli("connector", "check", "--config", str(deployment / "tax.toml"), "--json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["ok"] is True
    assert document["directory"]["serial"] == 7


def test_cli_check_reports_an_invalid_config_with_exit_2(cli, tmp_path):
    """An invalid file is `error [config-invalid]: ...` naming the field, exit 2."""
    path = write(tmp_path, MINIMAL + "[api]\nport = 0\n")
    result = cli("connector", "check", "--config", str(path))
    assert result.exit_code == 2
    assert "error [config-invalid]" in result.output
    assert "api.port" in result.output
    assert "Traceback" not in result.output


def test_cli_check_reports_missing_keys_with_exit_2(cli, deployment):
    """A key folder without keys is the key store's error, exit 2."""
    text = MINIMAL.replace('keys = "keys"', 'keys = "no-keys-here"')
    result = cli("connector", "check", "--config", str(write(deployment, text)))
    assert result.exit_code == 2
    assert "error [" in result.output
    assert "Traceback" not in result.output


def test_cli_check_refuses_an_unset_api_token_variable(cli, deployment):
    """api.token_env naming an unset variable fails the check, exit 2."""
    path = write(deployment, MINIMAL + '[api]\ntoken_env = "TABADUL_TEST_UNSET_TOKEN"\n')
    result = cli("connector", "check", "--config", str(path))
    assert result.exit_code == 2
    assert "TABADUL_TEST_UNSET_TOKEN" in result.output
