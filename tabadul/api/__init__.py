"""The management API (FastAPI): the bus registry and the signed directory, people and API
tokens, the dataset workflow (submit, review, publish, withdraw), the audit log and the
exchange traffic; errors as RFC 9457 problem details. OpenAPI at ``/openapi.json``.

>>> app = create_app_from_settings(Settings.from_env())   # closes its services on shutdown
>>> app = create_app(services)                            # over services the caller manages

``tabadul api serve`` serves the first with uvicorn. docs/api.md lists the endpoints.
"""

from tabadul.api._app import create_app, create_app_from_settings
from tabadul.api._logging import RedactTokens, server_log_config
from tabadul.api._problems import PROBLEM_JSON, Problem

__all__ = [
    "PROBLEM_JSON",
    "Problem",
    "RedactTokens",
    "create_app",
    "create_app_from_settings",
    "server_log_config",
]
