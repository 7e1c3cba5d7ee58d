"""Sessions, flash messages, CSRF and the response plumbing every console page shares.

The session is the user's API token, kept in an HttpOnly, ``SameSite=Strict`` cookie and
checked on every request (:meth:`governance.Tokens.authenticate`): a revoked or expired token
ends the session at once. Every form that changes something carries a CSRF token derived
from the session token (an HMAC, so it needs no server state and holds across workers), and
every POST must come from this origin (``Origin`` / ``Sec-Fetch-Site``).

A flash message survives one redirect (POST-redirect-GET) in a short cookie signed with a key
of this process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from governance import User
from tabadul.console._i18n import LANGUAGES, Translator

SESSION_COOKIE = "tabadul_console"
LANG_COOKIE = "tabadul_lang"
FLASH_COOKIE = "tabadul_flash"
LANGUAGE_NAMES = {"ar": "العربية", "fr": "Français", "en": "English"}
_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
_MAX_MESSAGE = 600
_MAX_DETAILS = 8
_MAX_DETAIL = 200
_ONE_YEAR = 365 * 24 * 3600
_MAX_COOKIE = 3500  # bytes of payload, leaving room for the MAC and the attributes
SECURITY_HEADERS = {
    # no script at all; styles only from the console's own stylesheet
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: only who holds the (HttpOnly) session token can make it."""
    mac = hmac.new(session_token.encode(), b"tabadul-console-csrf", hashlib.sha256)
    return mac.hexdigest()[:40]


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a POST comes from the console's own pages: ``Sec-Fetch-Site`` (when the
    browser sends it) is same-origin, and ``Origin`` (when sent) names this host."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == headers.get("host", "")


def safe_next(target: str, base: str) -> str | None:
    """``target`` when it is a path inside the console (never another site), else None."""
    if not target.startswith(base + "/") or "//" in target or "\\" in target:
        return None
    return target


@dataclass(frozen=True, slots=True)
class Flash:
    """A message for the next page: ``ok`` (``key`` names the text) or ``error`` (a stable
    ``code`` and the library's message, with optional ``details`` lines)."""

    kind: str
    key: str = ""
    code: str = ""
    message: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    details: Sequence[str] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "code": self.code,
            "message": self.message[:_MAX_MESSAGE],
            "params": {str(k): str(v)[:_MAX_DETAIL] for k, v in self.params.items()},
            "details": [str(d)[:_MAX_DETAIL] for d in list(self.details)[:_MAX_DETAILS]],
        }

    @classmethod
    def from_dict(cls, data: object) -> Flash | None:
        if not isinstance(data, dict) or data.get("kind") not in {"ok", "error"}:
            return None
        code = str(data.get("code") or "")
        if code and not _CODE.match(code):
            return None
        params = data.get("params")
        details = data.get("details")
        return cls(
            kind=str(data["kind"]),
            key=str(data.get("key") or ""),
            code=code,
            message=str(data.get("message") or ""),
            params={str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {},
            details=tuple(str(d) for d in details) if isinstance(details, list) else (),
        )


class FlashCodec:
    """Flash messages to and from a signed cookie value."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:32]

    def dumps(self, flash: Flash) -> str:
        """The cookie value; details, then the message, are cut to stay within what every
        browser keeps (a cookie over 4 kB is dropped silently)."""
        data = flash.as_dict()
        while True:
            payload = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=False).encode())
            if len(payload) <= _MAX_COOKIE:
                return f"{payload.decode()}.{self._mac(payload)}"
            if data["details"]:
                data["details"] = data["details"][:-1]
            else:
                data["message"] = data["message"][: len(data["message"]) // 2]

    def loads(self, value: str | None) -> Flash | None:
        """The flash of a cookie value; None for none, a forged or a mangled one."""
        if not value or "." not in value:
            return None
        payload, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            return Flash.from_dict(json.loads(base64.urlsafe_b64decode(payload.encode())))
        except (binascii.Error, ValueError):
            return None


@dataclass(slots=True)
class View:
    """One request as the console sees it: language, signed-in user, where the console is."""

    request: Request
    t: Translator
    remember_lang: bool
    base: str
    user: User | None = None
    token: str | None = None
    flash: Flash | None = None
    had_flash: bool = False

    @property
    def csrf(self) -> str:
        return csrf_token(self.token) if self.token else ""

    def lang_links(self) -> list[tuple[str, str, str, bool]]:
        """(code, name, link to this page in that language, is it this one) per language."""
        query = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        path = self.request.url.path
        return [
            (
                code,
                LANGUAGE_NAMES[code],
                f"{path}?{urlencode([*query, ('lang', code)])}",
                code == self.t.lang,
            )
            for code in LANGUAGES
        ]


def console_base(request: Request) -> str:
    """The console's path prefix (``/console`` when mounted there), without a final slash."""
    return request.url_for("console.home").path.rstrip("/")


def finish(view: View, response: Response) -> Response:
    """Add the security headers, remember an explicitly chosen language, drop a shown flash."""
    response.headers.update(SECURITY_HEADERS)
    path = view.base or "/"
    if view.remember_lang:
        response.set_cookie(LANG_COOKIE, view.t.lang, max_age=_ONE_YEAR, path=path, samesite="lax")
    if view.had_flash and isinstance(response, HTMLResponse):
        response.delete_cookie(FLASH_COOKIE, path=path)
    return response


def redirect(view: View, target: str, flash: Flash | None, codec: FlashCodec) -> Response:
    """A 303 to ``target`` carrying ``flash`` to the page it lands on."""
    response = RedirectResponse(target, status_code=303)
    if flash is not None:
        response.set_cookie(
            FLASH_COOKIE,
            codec.dumps(flash),
            path=view.base or "/",
            httponly=True,
            samesite="strict",
            secure=view.request.url.scheme == "https",
        )
    return finish(view, response)


def set_session(view: View, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=view.base or "/",
        httponly=True,
        samesite="strict",
        secure=view.request.url.scheme == "https",
    )


def clear_session(view: View, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=view.base or "/",
        httponly=True,
        samesite="strict",
        secure=view.request.url.scheme == "https",
    )


__all__ = [
    "FLASH_COOKIE",
    "LANGUAGE_NAMES",
    "LANG_COOKIE",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "Flash",
    "FlashCodec",
    "View",
    "clear_session",
    "console_base",
    "csrf_token",
    "finish",
    "redirect",
    "safe_next",
    "same_origin",
    "set_session",
]
