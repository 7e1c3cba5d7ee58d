"""A FastAPI app served for real, as `connector run` and `api serve` serve one: uvicorn on
127.0.0.1 (a free port) in a thread, with plain httpx clients.

Starlette's TestClient is not used: with the installed Starlette it warns that it wants the
httpx2 package, and warnings are errors here.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``condition`` until it is truthy or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    return condition()


class Served:
    """An app served by uvicorn on 127.0.0.1 (a free port) in a thread; ``close`` stops it
    and closes the clients it made."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        # as `tabadul api serve`: forwarding headers are the application's business
        config = uvicorn.Config(
            app,
            lifespan="off",
            ws="none",
            log_config=None,
            access_log=False,
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self.thread.start()
        assert wait_until(lambda: self.server.started or not self.thread.is_alive())
        assert self.server.started, "uvicorn did not start"
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self._clients: list[httpx.Client] = []

    def client(self, *, timeout: float = 60.0, **options: Any) -> httpx.Client:
        """A new client of the app (its own cookies); ``options`` go to ``httpx.Client``."""
        made = httpx.Client(base_url=self.url, timeout=timeout, **options)
        self._clients.append(made)
        return made

    def close(self) -> None:
        for made in self._clients:
            made.close()
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()
