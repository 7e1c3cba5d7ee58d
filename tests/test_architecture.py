"""The dependency direction of docs/architecture.md, enforced by walking every import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exchange", "schemas", "governance", "connectors", "opendata", "risk", "tabadul")
ALLOWED = {
    "exchange": set(),
    "schemas": set(),
    "governance": {"exchange", "schemas"},
    "connectors": {"exchange", "schemas"},
    "opendata": {"governance", "schemas"},
    "risk": {"exchange", "schemas"},
    "tabadul": set(PACKAGES),
}
# The pure core talks to no broker, web framework or database...
IO_LIBRARIES = {
    "pika", "aio_pika", "fastapi", "starlette", "httpx", "requests", "urllib3", "uvicorn",
    "sqlalchemy", "psycopg", "psycopg2", "sqlite3", "ckanapi", "socket", "http",
}  # fmt: skip
# ...except the message log's storage modules, each behind the LogStore interface.
IO_EXCEPTIONS = {
    "exchange/log/_sqlite.py": {"sqlite3"},
    "exchange/log/_postgres.py": {"psycopg"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_downstream(package):
    """Each package imports only the project packages its layer may see."""
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            (_imports(path) & set(PACKAGES)) - ALLOWED[package] - {package}
        )
        for path in _files(package)
    }
    assert {k: v for k, v in wrong.items() if v} == {}


@pytest.mark.parametrize("package", ["exchange", "schemas"])
def test_pure_core_has_no_io_imports(package):
    """exchange/ and schemas/ import no broker, HTTP or database library (log storage aside)."""
    wrong = {}
    for path in _files(package):
        rel = str(path.relative_to(ROOT))
        bad = (_imports(path) & IO_LIBRARIES) - IO_EXCEPTIONS.get(rel, set())
        if bad:
            wrong[rel] = sorted(bad)
    assert wrong == {}


def test_benchmarks_do_not_import_the_composition_root():
    """bench/ is imported by `tabadul bench`; it may not import tabadul/ in turn."""
    wrong = {
        str(path.relative_to(ROOT)): "tabadul"
        for path in sorted((ROOT / "bench").rglob("*.py"))
        if "tabadul" in _imports(path)
    }
    assert wrong == {}


def test_the_walker_sees_imports():
    """The import walker finds absolute imports (so the rules above cannot pass vacuously)."""
    assert {"exchange", "cryptography"} <= _imports(ROOT / "exchange" / "sandbox.py")
    assert len(_files("exchange")) >= 8
