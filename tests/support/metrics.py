"""A connector's ``/metrics`` and ``/health`` over real HTTP, for the traffic figures of the
management API and the console."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class MetricsSource:
    """An HTTP server on 127.0.0.1 (a free port) answering ``/metrics`` with what ``body()``
    returns and ``/health`` with ``health`` as JSON (404 without it). Stop it with ``close()``,
    or use it as a context manager."""

    def __init__(self, body: Callable[[], bytes], health: Mapping[str, Any] | None = None) -> None:
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    data, kind = source.body(), "text/plain; version=0.0.4"
                elif self.path == "/health" and source.health is not None:
                    data, kind = json.dumps(source.health).encode(), "application/json"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.body = body
        self.health = health
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
