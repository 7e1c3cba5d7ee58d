"""Server logging without secrets: uvicorn's access log writes each request's full URL, so an
API token pasted into a query string by mistake would land in the log; this filter masks
the secret part of any token in every record the server writes."""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from governance import redact_tokens


class RedactTokens(logging.Filter):
    """Masks API token secrets in a record's message and arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def server_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`RedactTokens` on every handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    return config
