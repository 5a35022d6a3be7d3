"""Login with ``DASHBOARD_API_KEY``: a form, then an encrypted session cookie."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from nexus.domain.credentials import secrets_match
from nexus.entrypoints.http.api.auth import carries_dashboard_key

SESSION_HOURS = 12
BASE = "/dashboard"


def dashboard_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    key: str | None = connection.app.state.get("dashboard_api_key")
    return key


def signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    session = connection.scope.get("session")
    issued = session.get("signed_in_at") if isinstance(session, dict) else None
    return isinstance(issued, (int, float)) and time.time() - issued < SESSION_HOURS * 3600


async def require_login(request: Request[Any, Any, Any]) -> Any:
    """Before every page: the setup page without a key, the login form without a session.

    A request carrying the key itself (``X-Dashboard-Key``, as the original's pages accepted,
    ``X-API-Key`` or ``Authorization: Bearer``) is let in for itself alone: scripts reading a
    page need no login round trip, and no session is created for them. A wrong key is no
    session either: the login form, as without one."""
    expected = dashboard_key(request)
    if not expected:
        return Template("setup.html", context={"page": "setup"}, status_code=503)
    if signed_in(request) or carries_dashboard_key(request, expected):
        return None
    # The query comes back too: an old link's ``?accountId=`` or ``?view=`` survives signing in.
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = f"{BASE}/login?{urlencode({'next': here})}"
    if request.headers.get("hx-request"):
        # An HTMX fragment cannot be swapped for the login page: ask the browser to go there.
        return Response(b"", status_code=200, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _safe_next(value: str) -> str:
    """Only a path of this dashboard: never an open redirect to another site."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith(BASE) or "//" in value or "\\" in value:
        return BASE
    return value


class AuthController(Controller):
    path = ""

    @get("/login", name="dashboard-login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        next: Annotated[str, QueryParameter(description="Where to go once signed in")] = BASE,
    ) -> Template | Redirect:
        if not dashboard_key(request):
            return Template("setup.html", context={"page": "setup"}, status_code=503)
        if signed_in(request):
            return Redirect(_safe_next(next), status_code=303)
        return Template("login.html", context={"page": "login", "next": _safe_next(next), "error": None})

    @post("/login", status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        expected = dashboard_key(request)
        if not expected:
            return Template("setup.html", context={"page": "setup"}, status_code=503)
        target = _safe_next(data.get("next", BASE))
        if not secrets_match(data.get("key", "").strip(), expected):
            context = {"page": "login", "next": target, "error": "That key is not the dashboard key."}
            return Template("login.html", context=context, status_code=401)
        request.set_session({"signed_in_at": time.time()})
        return Redirect(target, status_code=303)

    @get("/logout", name="dashboard-logout-form")
    async def logout_form(self, request: Request[Any, Any, Any]) -> Template | Redirect:
        """The original's ``GET /dashboard/logout`` link: a one-click form, since a GET must not
        end the session (a link or an image on any page could)."""
        if not dashboard_key(request):
            return Template("setup.html", context={"page": "setup"}, status_code=503)
        if not signed_in(request):
            return Redirect(f"{BASE}/login", status_code=303)
        return Template("logout.html", context={"page": "logout"})

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(f"{BASE}/login", status_code=303)
