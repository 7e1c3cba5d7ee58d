"""Multipart uploads over a raw socket, for what an HTTP client library will not do: send
headers alone, stream a body without end, stop in the middle and hang up.

Also what a test checks afterwards: the upload folder is empty, and the server holds no
file in it open.
"""

from __future__ import annotations

import re
import select
import socket
from collections.abc import Iterable
from pathlib import Path

BOUNDARY = "tabadul-test-boundary"
CHUNK = 16 * 1024


def part(name: str, value: str) -> bytes:
    """A text part of the form."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(name: str, filename: str) -> bytes:
    """The start of a file part; its bytes follow, then ``TAIL``."""
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()


TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(
    url: str, path: str, *, length: int | None, headers: dict[str, str] | None = None
) -> bytes:
    """The request line and headers of a multipart POST; without ``length``, chunked."""
    host = url.removeprefix("http://")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def answered(sock: socket.socket) -> bool:
    """Whether the server has started answering (without waiting)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the body of the answer (its Content-Length of it, or whatever comes
    before the server stops sending)."""
    received = b""
    while True:
        head, found, body = received.partition(b"\r\n\r\n")
        if found:
            lengths = re.findall(rb"(?im)^content-length:\s*(\d+)", head)
            if lengths and len(body) >= int(lengths[0]):
                break
        data = sock.recv(65536)
        if not data:
            break
        received += data
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def send_until_answered(sock: socket.socket, chunks: Iterable[bytes]) -> int:
    """Send ``chunks`` until the server answers or they run out; the bytes sent."""
    sent = 0
    for chunk in chunks:
        if answered(sock):
            break
        sock.sendall(chunk)
        sent += len(chunk)
    return sent


def rows(total: int) -> Iterable[bytes]:
    """``total`` bytes of CSV rows, in chunks."""
    row = b"0101,2.5\n" * (CHUNK // 9)
    sent = 0
    while sent < total:
        chunk = row[: total - sent]
        sent += len(chunk)
        yield chunk


def held_open(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open (the served app runs in it)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed since it was listed
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def leftovers(folder: Path) -> list[str]:
    """What is left in ``folder`` (files and folders, recursively), or held open in it. A
    folder removed while it is listed (the server cleaning up meanwhile) counts as still
    there, so a caller waiting for nothing to be left looks again."""
    try:
        listed = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    except FileNotFoundError as gone:
        return [f"{gone.filename} (removed while listed)"]
    return listed + held_open(folder)
