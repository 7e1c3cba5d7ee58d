"""Reading CSV tables: the declared dialect (never a guess), bounded lines, cells, columns and
bytes with coded errors, and streams that never end (``/dev/zero``) refused in bounded memory."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from governance import (
    RFC4180,
    BadSource,
    CellTooLarge,
    Dialect,
    FileTooLarge,
    InvalidInput,
    LineTooLong,
    NotUtf8,
    TableLimits,
    TooLarge,
    TooWide,
    open_table,
)


def _file(tmp_path: Path, content: bytes | str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _read(path: Path, dialect: Dialect = RFC4180, limits: TableLimits | None = None):
    with open_table(path, dialect, limits or TableLimits()) as table:
        return table.header, list(table.rows())


def test_the_declared_delimiter_is_used_never_a_guess(tmp_path):
    """A first line with more semicolons than commas is still read with commas when commas
    are declared: the header a validator reads is the one every reader reads."""
    path = _file(tmp_path, "lieu;province;commune,ref\nrabat,+212612345670\n")
    header, rows = _read(path)
    assert header == ["lieu;province;commune", "ref"]
    assert rows == [["rabat", "+212612345670"]]
    header, rows = _read(path, Dialect(";"))
    assert header == ["lieu", "province", "commune,ref"]


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path):
    header, rows = _read(_file(tmp_path, "\ufeffa,b\n1,2\n".encode()))
    assert (header, rows) == (["a", "b"], [["1", "2"]])


@pytest.mark.parametrize(
    ("delimiter", "quote_char"), [("", '"'), (",,", '"'), ("a", '"'), (",", ","), (",", "\n")]
)
def test_a_dialect_is_one_of_the_known_ones(delimiter, quote_char):
    with pytest.raises(InvalidInput):
        Dialect(delimiter, quote_char)


def test_dialect_as_frictionless_descriptor():
    assert Dialect(";").as_dict() == {
        "delimiter": ";",
        "quoteChar": '"',
        "doubleQuote": True,
        "skipInitialSpace": False,
        "header": True,
    }


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_limits_are_positive_integers(bad):
    with pytest.raises(InvalidInput):
        TableLimits(max_line=bad)


def test_a_line_over_the_limit_is_refused_with_its_code(tmp_path):
    path = _file(tmp_path, "a,b\n1,2\n" + "x" * 5000 + ",3\n")
    with pytest.raises(LineTooLong) as caught:
        _read(path, limits=TableLimits(max_line=4096))
    assert caught.value.code == "line-too-long"
    assert caught.value.line == 3
    assert isinstance(caught.value, TooLarge)
    assert isinstance(caught.value, BadSource)


def test_a_record_spanning_lines_counts_as_one_line(tmp_path):
    """A quoted cell with line breaks cannot be used to slip a long record past the limit."""
    cell = '"' + "\n".join(["y" * 100] * 50) + '"'
    path = _file(tmp_path, f"a,b\n{cell},1\n")
    with pytest.raises(LineTooLong):
        _read(path, limits=TableLimits(max_line=4096))
    _, rows = _read(path, limits=TableLimits(max_line=8192))
    assert rows[0][0].count("\n") == 49


def test_a_cell_over_the_limit_is_refused(tmp_path):
    path = _file(tmp_path, "a,b\n" + "z" * 3000 + ",1\n")
    with pytest.raises(CellTooLarge) as caught:
        _read(path, limits=TableLimits(max_cell=2048))
    assert caught.value.code == "cell-too-large"
    assert "z" * 20 not in caught.value.message


def test_a_cell_limit_does_not_depend_on_the_csv_module_global(tmp_path):
    """``csv.field_size_limit`` is process-wide (Frictionless raises it to 2 GiB at import):
    the table's own bound applies however high it is, and is never changed by reading; a
    lower one refuses a cell with the same code."""
    path = _file(tmp_path, "a\n" + "q" * 500 + "\n")
    before = csv.field_size_limit()
    try:
        csv.field_size_limit(2**31 - 1)
        with pytest.raises(CellTooLarge):
            _read(path, limits=TableLimits(max_cell=100))
        assert csv.field_size_limit() == 2**31 - 1
        csv.field_size_limit(10)
        with pytest.raises(CellTooLarge):
            _read(path)
        assert csv.field_size_limit() == 10
    finally:
        csv.field_size_limit(before)


def test_too_many_columns_in_the_header_or_a_row(tmp_path):
    wide = ",".join(f"c{i}" for i in range(50))
    with pytest.raises(TooWide) as caught:
        _read(_file(tmp_path, wide + "\n"), limits=TableLimits(max_columns=20))
    assert (caught.value.code, caught.value.line) == ("too-wide", 1)
    with pytest.raises(TooWide) as caught:
        _read(_file(tmp_path, "a,b\n" + "1," * 30 + "\n"), limits=TableLimits(max_columns=20))
    assert caught.value.line == 2


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path):
    path = _file(tmp_path, "a\n" + "1\n" * 10_000)
    with pytest.raises(FileTooLarge) as caught:
        _read(path, limits=TableLimits(max_bytes=1000))
    assert caught.value.code == "file-too-large"


def test_a_stream_over_the_byte_limit_is_refused_as_it_is_read(tmp_path):
    """A pipe has no size to check first: the bytes are counted as they come."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), fifo.open("wb") as out:
            out.write(b"a\n")
            for _ in range(2000):
                out.write(b"1\n" * 100)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(FileTooLarge):
        _read(fifo, limits=TableLimits(max_bytes=10_000))
    writer.join(timeout=30)


def test_dev_zero_ends_with_a_coded_error_in_bounded_memory():
    """An endless stream without line breaks is refused at the line limit, never read whole."""
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge) as caught:
            _read(Path("/dev/zero"), limits=TableLimits(max_line=1 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "line-too-long"
    assert peak < 32 * (1 << 20)


def test_not_utf8_names_the_line_and_offset(tmp_path):
    path = _file(tmp_path, b"nom,ville\nAmina,Rabat\nOmar,F\xe8s\n")
    with pytest.raises(NotUtf8) as caught:
        _read(path)
    assert (caught.value.code, caught.value.line) == ("not-utf8", 3)
    assert "offset 28" in caught.value.message
    assert isinstance(caught.value, BadSource)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "no header"),
        (b"\n1\n", "no header"),
        (b'a,b\n"1"x,2\n', "line 2"),
        (b'a,b\n"never closed,2\n3,4\n', "line"),
    ],
)
def test_what_is_not_a_table_is_bad_source(tmp_path, content, match):
    with pytest.raises(BadSource, match=match) as caught:
        _read(_file(tmp_path, content))
    assert caught.value.code == "bad-source"


def test_unreadable_paths(tmp_path):
    with pytest.raises(BadSource, match="cannot read"):
        _read(tmp_path / "missing.csv")
    with pytest.raises(BadSource, match="cannot read"):
        _read(tmp_path)


def test_the_digest_covers_every_byte_even_after_the_last_row(tmp_path):
    content = b"a,b\n1,2\n\n\n"
    path = _file(tmp_path, content)
    with open_table(path, digest=True) as table:
        next(table.rows())
        assert table.sha256() == hashlib.sha256(content).hexdigest()
