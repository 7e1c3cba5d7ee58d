"""The web console for data stewards, approvers, auditors and the bus operator.

Server-rendered pages (Jinja2, plain HTML forms, POST-redirect-GET, inline SVG charts, no
script) in Arabic (right to left), French and English, over the same ``Services`` the
management API uses::

    app.include_router(console_router(services), prefix="/console")

Pages: sign-in (an API token, kept in an HttpOnly SameSite=Strict cookie), the dataset list
and each dataset (metadata, classification, submission with a CSV upload, PII findings and
their resolution, the validation report, the four-eyes review, publication and withdrawal,
its audit trail), the global audit trail and the exchange traffic dashboard (operators and
auditors).
"""

from tabadul.console._router import console_router

__all__ = ["console_router"]
