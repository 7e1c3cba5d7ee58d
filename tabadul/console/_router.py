"""The console's routes: server-rendered pages (Jinja2) and the forms that drive the
governance workflow and the open-data pipeline, POST-redirect-GET.

Every change goes through ``services.workflow`` or ``services.opendata`` (the one code path
for submit, publish and withdraw); their refusals come back as a flash message on the page
(the translated title of the error's code, the code and the message), never a traceback. A
request refused before it reaches its route (a body or a text over its limit, a form that
cannot be read: :mod:`tabadul._http`) is an error page with the code and the status the API
gives it. An uploaded file is streamed to disk (:mod:`tabadul._uploads`), once the session,
the origin and the workflow have let it through.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException

from connectors import ConnectorError, DeadLetterError, UnknownDeadLetter
from connectors import StoreError as ConnectorStoreError
from governance import (
    AuditTampered,
    GovernanceError,
    InvalidInput,
    Level,
    NotFound,
    PiiUnresolved,
    Refused,
    Resolution,
    State,
    StoreError,
    TooManyAttempts,
    Unauthenticated,
    User,
    check_action,
    check_publishable,
    quality,
)
from governance.pii import PiiError
from opendata import InvalidData, NoReleaseKey, OpenDataError, PortalError, ckan_name
from tabadul._access import readable_dataset
from tabadul._dead_letters import UnknownConnector
from tabadul._http import ApiProblem, text_limit
from tabadul._services import Services
from tabadul._traffic import scrape, summarise
from tabadul._uploads import received_upload
from tabadul.console._charts import bar_chart
from tabadul.console._dead_letters import add_dead_letter_pages
from tabadul.console._i18n import LANGUAGES, Translator, choose_language, load_catalogues
from tabadul.console._pages import (
    approve_gate,
    finding_rows,
    gate,
    may_read_everything,
    pick,
    transition,
    validation_of,
)
from tabadul.console._web import (
    FLASH_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    Flash,
    FlashCodec,
    View,
    clear_session,
    console_base,
    finish,
    redirect,
    safe_next,
    same_origin,
    set_session,
)

AUDIT_LIMITS = (50, 200, 1000)
_STATIC_TYPES = {".css": "text/css; charset=utf-8"}
# Errors the libraries raise for people: shown as a flash with their code, never a traceback.
KNOWN_ERRORS = (GovernanceError, OpenDataError, PiiError)
Outcome = tuple[str, dict[str, object]]  # (catalogue key of the success text, its params)
# a form field (module level: FastAPI resolves the string annotations in the module's globals)
form = Annotated[str, Form()]


logger = logging.getLogger("tabadul.console")

# The status of a refusal page, by the error's class (the first that matches).
_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (TooManyAttempts, 429),
    (Unauthenticated, 401),
    (Refused, 403),
    (StoreError, 503),
    (PortalError, 502),
    (NoReleaseKey, 503),
    (UnknownDeadLetter, 404),
    (UnknownConnector, 404),
    (DeadLetterError, 409),
    (ConnectorError, 503),  # a managed connector's broker, database or configuration
)


def page_status(exc: Exception) -> int:
    """The status of the page answering ``exc``: an HTTP-level problem's own (the status
    the API gives its code), else by the error's class."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    return next((status for kind, status in _STATUSES if isinstance(exc, kind)), 400)


def error_flash(exc: Exception) -> Flash:
    """A library error as a flash: its code, its message and, where there are several
    items, each (validation errors, unresolved finding ids)."""
    code = str(getattr(exc, "code", "invalid-input"))
    message = str(getattr(exc, "message", exc))
    details: list[str] = []
    if isinstance(exc, StarletteHTTPException):  # found before the route: limits, forms
        code = exc.code if isinstance(exc, ApiProblem) else "bad-request"
        message = str(exc.detail)
        if isinstance(exc, ApiProblem):
            details = [str(e["path"]) for e in exc.extras.get("errors", [])]
    elif isinstance(exc, RequestValidationError):
        code, message = "invalid-request", "the form is not the one this page sends"
        details = [".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()]
    if isinstance(exc, StoreError | ConnectorStoreError):
        # the database's own text (SQL, parameters) is for the server log, not the page
        whose = "governance" if isinstance(exc, StoreError) else "connector's"
        logger.error("%s database error: %s", whose, message)
        message = f"the {whose} database did not answer; try again later"
    if isinstance(exc, InvalidData):
        details = [
            " · ".join(str(part) for part in (e.row and f"row {e.row}", e.field, e.message) if part)
            for e in exc.report.errors
        ]
    elif isinstance(exc, PiiUnresolved):
        details = list(exc.findings)
    return Flash("error", code=code, message=message, details=details)


def _retry_after(exc: Exception, response: Response) -> Response:
    """A throttled client is told when to come back, as the API tells it."""
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


class Console:
    """The console over one :class:`~tabadul._services.Services`: catalogues, templates and
    static files are read once, here."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.catalogues = load_catalogues()
        self.env = Environment(
            loader=PackageLoader("tabadul.console", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        folder = resources.files("tabadul.console") / "static"
        self.static = {
            item.name: item.read_bytes()
            for item in folder.iterdir()
            if Path(item.name).suffix in _STATIC_TYPES
        }
        self.flashes = FlashCodec()

    # ---- requests -----------------------------------------------------------------------

    def view(self, request: Request) -> View:
        """The request's language and flash; the user is filled in by :meth:`signed_in`."""
        lang, remember = choose_language(
            request.query_params.get("lang"),
            request.cookies.get(LANG_COOKIE),
            request.headers.get("accept-language"),
        )
        view = View(
            request, Translator(lang, self.catalogues[lang]), remember, console_base(request)
        )
        raw = request.cookies.get(FLASH_COOKIE)
        view.had_flash = raw is not None
        view.flash = self.flashes.loads(raw)
        return view

    def signed_in(self, request: Request) -> View | Response:
        """The view with its user, or the response to send instead: to the sign-in page
        (no session, or one whose token no longer works) or an error page (store down, or
        a client throttled for failing too often: a session cookie holding a wrong token
        counts as a failed sign-in, as at the sign-in form and the API)."""
        view = self.view(request)
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return self.to_sign_in(view)
        try:
            view.user = self.services.tokens.authenticate(token, client=_client(request))
        except TooManyAttempts as exc:
            return self.error_page(view, exc)
        except Unauthenticated as exc:
            response = self.to_sign_in(view, error_flash(exc))
            clear_session(view, response)
            return response
        except GovernanceError as exc:
            return self.error_page(view, exc)
        view.token = token
        return view

    def overseer(self, request: Request) -> View | Response:
        """:meth:`signed_in`, for the pages of operators and auditors only: anyone else gets
        the wrong-role refusal."""
        view = self.signed_in(request)
        if isinstance(view, Response):
            return view
        assert view.user is not None
        if not may_read_everything(view.user):
            return self.refusal_page(view, "wrong-role", 403)
        return view

    def to_sign_in(self, view: View, flash: Flash | None = None) -> Response:
        here = view.request.url.path
        if view.request.url.query:
            here += "?" + view.request.url.query
        target = f"{view.base}/signin"
        if view.request.method == "GET" and safe_next(here, view.base):
            target += "?" + urlencode({"next": here})
        return redirect(view, target, flash, self.flashes)

    def posted(self, request: Request, csrf: str) -> View | Response:
        """A signed-in POST from this origin with the session's CSRF token, or the answer."""
        view = self.signed_in(request)
        if isinstance(view, Response):
            return view
        if not same_origin(request.headers):
            return self.refusal_page(view, "bad-origin", 403)
        if not csrf or not hmac.compare_digest(csrf.encode(), view.csrf.encode()):
            return self.refusal_page(view, "csrf", 403)
        return view

    def act(
        self,
        request: Request,
        csrf: str,
        dataset_id: str,
        run: Callable[[User], Outcome],
    ) -> Response:
        """Run one workflow or pipeline step for the signed-in user, then back to the top of
        the dataset's page, where the flash says what happened (or why not). Another
        agency's dataset is refused as an unknown one, before the step is tried."""
        view = self.posted(request, csrf)
        if isinstance(view, Response):
            return view
        assert view.user is not None
        try:
            readable_dataset(self.services.workflow, view.user, dataset_id)
            key, params = run(view.user)
            flash = Flash("ok", key=key, params={k: str(v) for k, v in params.items()})
        except KNOWN_ERRORS as exc:
            flash = error_flash(exc)
        return redirect(view, _dataset_page(view, dataset_id), flash, self.flashes)

    def before_upload(self, request: Request, dataset_id: str) -> Response | None:
        """The answer to an upload refused before its file is read (as :meth:`act` would
        refuse it: no live session, another origin, a dataset the user may not read or
        submit), or None to read it. The CSRF token, in the form, is checked after."""
        view = self.signed_in(request)
        if isinstance(view, Response):
            return view
        if not same_origin(request.headers):
            return self.refusal_page(view, "bad-origin", 403)
        assert view.user is not None
        try:
            dataset = readable_dataset(self.services.workflow, view.user, dataset_id)
            check_action("submit_for_review", view.user, dataset)
            check_publishable("submit_for_review", dataset)
        except KNOWN_ERRORS as exc:
            return redirect(view, _dataset_page(view, dataset_id), error_flash(exc), self.flashes)
        return None

    # ---- rendering ----------------------------------------------------------------------

    def render(self, view: View, template: str, status: int = 200, **context: Any) -> Response:
        t = view.t
        user = view.user
        nav = []
        if user is not None:
            nav.append(("datasets", f"{view.base}/datasets", t("nav.datasets")))
            if may_read_everything(user):
                nav.append(("audit", f"{view.base}/audit", t("nav.audit")))
                nav.append(("traffic", f"{view.base}/traffic", t("nav.traffic")))
                nav.append(("dead_letters", f"{view.base}/dead-letters", t("nav.dead_letters")))
        html = self.env.get_template(template).render(
            t=t,
            lang=t.lang,
            dir=t.direction,
            base=view.base,
            user=user,
            csrf=view.csrf,
            flash=view.flash,
            lang_links=view.lang_links(),
            nav=nav,
            **context,
        )
        return finish(view, HTMLResponse(html, status_code=status))

    def error_page(self, view: View, exc: Exception) -> Response:
        return _retry_after(
            exc, self.render(view, "error.html", page_status(exc), error=error_flash(exc))
        )

    def refusal_page(self, view: View, code: str, status: int) -> Response:
        message = view.t(f"refusal.{code}")
        return self.render(
            view, "error.html", status, error=Flash("error", code=code, message=message)
        )


def _client(request: Request) -> str | None:
    """The address failed sign-ins are counted by (a trusted proxy's client, see the API)."""
    return request.client.host if request.client else None


def _dataset_page(view: View, dataset_id: str) -> str:
    """Where to go after an action on ``dataset_id``: its page (the console's home for an
    id that could not be one)."""
    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{1,99}", dataset_id) is None:
        return view.base + "/"
    return f"{view.base}/datasets/{dataset_id}"


def _form_bool(value: str) -> bool:
    return value.lower() in {"on", "true", "1", "yes"}


def console_router(services: Services) -> APIRouter:  # noqa: C901, PLR0915 - one route each
    """The console's routes, to include under a prefix (the management API uses ``/console``).
    Each page needs a signed-in user (an API token pasted on the sign-in page)."""
    console = Console(services)
    workflow = services.workflow

    class Page(APIRoute):
        """A console route: a request refused before the route runs (a body or a text over
        its limit, a form that cannot be read) is answered with an error page."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except (StarletteHTTPException, RequestValidationError) as exc:
                    return console.error_page(console.view(request), exc)

            return handle

    router = APIRouter(
        include_in_schema=False,
        route_class=Page,
        dependencies=[Depends(text_limit(services.settings.max_field_chars))],
    )

    @router.get("/", name="console.home")
    def home(request: Request) -> Response:
        view = console.signed_in(request)
        if isinstance(view, Response):
            return view
        return redirect(view, f"{view.base}/datasets", None, console.flashes)

    @router.get("/static/{name}", name="console.static")
    def static(name: str) -> Response:
        body = console.static.get(name)
        if body is None:
            return Response(status_code=404)
        media = _STATIC_TYPES[Path(name).suffix]
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=3600"})

    # ---- signing in and out --------------------------------------------------------------

    @router.get("/signin", name="console.signin")
    def sign_in_page(request: Request, next: str = "") -> Response:  # noqa: A002 - the usual name
        view = console.view(request)
        return console.render(view, "signin.html", next=safe_next(next, view.base) or "")

    @router.post("/signin")
    def sign_in(request: Request, token: form = "", next: form = "") -> Response:  # noqa: A002
        view = console.view(request)
        if not same_origin(request.headers):
            return console.refusal_page(view, "bad-origin", 403)
        try:
            user = services.tokens.authenticate(token, client=_client(request))
        except GovernanceError as exc:
            view.flash = error_flash(exc)
            page = console.render(
                view, "signin.html", page_status(exc), next=safe_next(next, view.base) or ""
            )
            return _retry_after(exc, page)
        response = redirect(
            view,
            safe_next(next, view.base) or f"{view.base}/datasets",
            Flash("ok", key="done.signed_in", params={"name": user.name}),
            console.flashes,
        )
        set_session(view, response, token.strip())
        return response

    @router.post("/signout")
    def sign_out(request: Request, csrf: form = "") -> Response:
        view = console.posted(request, csrf)
        if isinstance(view, Response):
            return view
        response = redirect(
            view, f"{view.base}/signin", Flash("ok", key="done.signed_out"), console.flashes
        )
        clear_session(view, response)
        return response

    # ---- datasets -----------------------------------------------------------------------

    @router.get("/datasets", name="console.datasets")
    def dataset_list(request: Request, state: str = "", agency: str | None = None) -> Response:
        view = console.signed_in(request)
        if isinstance(view, Response):
            return view
        user = view.user
        assert user is not None
        if not may_read_everything(user):
            agency = user.agency  # people without oversight see only their own agency's
        elif agency is None:
            agency = ""  # an overseer's first visit: every agency
        chosen = State(state) if state in State.__members__ else None
        try:
            everything = workflow.datasets()
        except GovernanceError as exc:
            return console.error_page(view, exc)
        agencies = (
            sorted({d.owner_agency for d in everything} | {user.agency})
            if may_read_everything(user)
            else [user.agency]
        )
        shown = [
            d
            for d in everything
            if (chosen is None or d.state is chosen) and (not agency or d.owner_agency == agency)
        ]
        counts = {s.value: sum(1 for d in everything if d.state is s) for s in State}
        return console.render(
            view,
            "datasets.html",
            datasets=shown,
            states=[s.value for s in State],
            state=chosen.value if chosen else "",
            agencies=agencies,
            agency=agency,
            counts=counts,
            pick=pick,
        )

    @router.get("/datasets/{dataset_id}", name="console.dataset")
    def dataset_page(request: Request, dataset_id: str) -> Response:
        view = console.signed_in(request)
        if isinstance(view, Response):
            return view
        user = view.user
        assert user is not None
        try:
            ds = readable_dataset(workflow, user, dataset_id)
            review = workflow.review(dataset_id)
            history = workflow.history(dataset_id)
        except GovernanceError as exc:
            return console.error_page(view, exc)
        gates = {
            action: gate(action, user, ds)
            for action in (
                "classify",
                "submit_for_review",
                "resolve_finding",
                "reject",
                "reopen",
                "mark_published",
                "withdraw",
            )
        }
        gates["approve"] = approve_gate(user, ds, review, view.t)
        live = ds.state is State.PUBLISHED or ds.published_sha256 is not None
        ckan = f"{services.settings.ckan_url.rstrip('/')}/dataset/{ckan_name(ds.dataset_id)}"
        return console.render(
            view,
            "dataset.html",
            ds=ds,
            review=review,
            findings=finding_rows(review) if review else [],
            validation=validation_of(review) if review else None,
            history=history,
            transition=transition,
            gates=gates,
            levels=[level.value for level in Level],
            # by hand only "justify": dropping or generalising is a derivation (a new file)
            resolutions=[Resolution.JUSTIFY.value],
            languages=LANGUAGES,
            ckan_url=ckan if live else None,
            pick=pick,
            quality=quality(ds),
        )

    @router.post("/datasets/{dataset_id}/classify")
    def classify(  # noqa: PLR0913 - one parameter per form field
        request: Request,
        dataset_id: str,
        *,
        csrf: form = "",
        level: form = "",
        personal_data: form = "",
        legal_basis: form = "",
        justification: form = "",
    ) -> Response:
        def run(user: User) -> Outcome:
            ds = workflow.classify(
                user,
                dataset_id,
                level=level,
                personal_data=_form_bool(personal_data),
                legal_basis=legal_basis,
                justification=justification,
            )
            return "done.classified", {
                "level": ds.classification.level if ds.classification else ""
            }

        return console.act(request, csrf, dataset_id, run)

    @router.post("/datasets/{dataset_id}/submit")
    async def submit(request: Request, dataset_id: str) -> Response:
        """The form (multipart): ``csrf``, ``reason`` and the file ``data``, streamed to
        disk once the session, the origin and the workflow let it through."""
        refused = await run_in_threadpool(console.before_upload, request, dataset_id)
        if refused is not None:
            return refused
        async with received_upload(
            request, services.settings, file_field="data", text_fields={"csrf", "reason"}
        ) as upload:

            def run(user: User) -> Outcome:
                if upload.path is None:
                    raise InvalidInput("choose the CSV file to submit")
                reason = upload.fields.get("reason", "")
                try:
                    done = services.opendata.submit(user, dataset_id, upload.path, reason=reason)
                except ValueError as exc:  # a Table Schema Frictionless cannot read
                    raise InvalidInput(str(exc)) from exc
                return "done.submitted", {"findings": len(done.review.findings)}

            csrf = upload.fields.get("csrf", "")
            return await run_in_threadpool(console.act, request, csrf, dataset_id, run)

    @router.post("/datasets/{dataset_id}/resolve")
    def resolve(  # noqa: PLR0913 - one parameter per form field
        request: Request,
        dataset_id: str,
        *,
        csrf: form = "",
        finding: form = "",
        resolution: form = "",
        reason: form = "",
    ) -> Response:
        def run(user: User) -> Outcome:
            workflow.resolve_finding(
                user, dataset_id, finding, resolution=resolution, reason=reason
            )
            return "done.resolved", {"finding": finding}

        return console.act(request, csrf, dataset_id, run)

    def reasoned(action: str, step: Callable[..., object], done_key: str) -> None:
        """A review step that takes only a reason: approve, reject, reopen."""

        def route(
            request: Request, dataset_id: str, csrf: form = "", reason: form = ""
        ) -> Response:
            def run(user: User) -> Outcome:
                step(user, dataset_id, reason=reason)
                return done_key, {}

            return console.act(request, csrf, dataset_id, run)

        router.post(f"/datasets/{{dataset_id}}/{action}", name=f"console.{action}")(route)

    reasoned("approve", workflow.approve, "done.approved")
    reasoned("reject", workflow.reject, "done.rejected")
    reasoned("reopen", workflow.reopen, "done.reopened")

    @router.post("/datasets/{dataset_id}/publish")
    def publish(request: Request, dataset_id: str, csrf: form = "") -> Response:
        def run(user: User) -> Outcome:
            try:
                result = services.opendata.publish(user, dataset_id)
            except ValueError as exc:  # the dataset cannot be mapped to a package as it is
                raise InvalidInput(str(exc)) from exc
            return f"done.published.{result.status}", {"version": result.version}

        return console.act(request, csrf, dataset_id, run)

    @router.post("/datasets/{dataset_id}/withdraw")
    def withdraw(request: Request, dataset_id: str, csrf: form = "", reason: form = "") -> Response:
        def run(user: User) -> Outcome:
            if not reason.strip():  # before the portal is touched
                raise InvalidInput("a withdrawal needs a reason")
            services.opendata.withdraw(user, dataset_id, reason=reason)
            return "done.withdrawn", {}

        return console.act(request, csrf, dataset_id, run)

    # ---- the operator's and auditor's pages ------------------------------------------------

    @router.get("/audit", name="console.audit")
    def audit(request: Request, subject: str = "", limit: str = "200") -> Response:
        view = console.overseer(request)
        if isinstance(view, Response):
            return view
        count = int(limit) if limit.isdigit() and int(limit) in AUDIT_LIMITS else 200
        integrity: dict[str, object]
        try:
            entries = workflow.audit.entries(subject=subject.strip() or None, limit=count)
            try:
                report = workflow.audit.verify()
                integrity = {"ok": True, "count": report.count, "head": report.head_hash}
            except AuditTampered as exc:
                integrity = {"ok": False, "seq": exc.seq, "reason": exc.reason}
        except GovernanceError as exc:
            return console.error_page(view, exc)
        return console.render(
            view,
            "audit.html",
            entries=list(reversed(entries)),
            subject=subject.strip(),
            limit=count,
            limits=AUDIT_LIMITS,
            integrity=integrity,
            transition=transition,
        )

    add_dead_letter_pages(router, console, error_flash)

    @router.get("/traffic", name="console.traffic")
    def traffic(request: Request) -> Response:
        view = console.overseer(request)
        if isinstance(view, Response):
            return view
        board = summarise(scrape(services.settings.metrics_urls))
        charts = {
            "connectors": bar_chart(
                [(name, (rec, sent)) for name, rec, sent in board.per_connector],
                ("received", "sent"),
                integral=True,
            ),
            "types": bar_chart(
                [(kind, (rec, sent)) for kind, rec, sent in board.per_type],
                ("received", "sent"),
                integral=True,
            ),
            "rejects": bar_chart(
                [(code, (n,)) for code, n in board.rejects], ("rejected",), integral=True
            ),
            "latency": bar_chart(
                [(r.kind, ((r.mean or 0) * 1000, (r.p95 or 0) * 1000)) for r in board.latency],
                ("mean", "p95"),
                fmt=_milliseconds,
            ),
        }
        return console.render(
            view,
            "traffic.html",
            board=board,
            charts=charts,
            configured=bool(services.settings.metrics_urls),
            ms=_milliseconds,
        )

    return router


def _milliseconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


__all__ = ["Console", "console_router", "error_flash", "page_status"]
