"""Server logging without secrets: uvicorn's access log writes each request's full URL, so an
API token pasted into a query string by mistake would land in the log. :func:`server_log_config`
routes uvicorn's loggers and the application's own (the root logger) through handlers that
mask the secret part of any token, in messages, arguments and tracebacks alike."""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from governance import redact_tokens


class RedactTokens(logging.Filter):
    """Masks API token secrets in a record's message and arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_tokens(record.exc_text)
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def server_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`RedactTokens` on every handler, and
    the root logger (the application's loggers) written through the same handler as
    uvicorn's errors."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    config["root"] = {"handlers": ["default"], "level": "INFO"}
    return config
