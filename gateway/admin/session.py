"""Dashboard sign-in: the gateway token in an HttpOnly, SameSite=Strict cookie, and CSRF
tokens on every form.

Signed in, a form's CSRF token is an HMAC of the session token (nothing stored server-side;
a page from elsewhere cannot compute it). The sign-in form uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.responses import Response

from gateway.admin.deps import ADMIN, AUDITOR, RuntimeDep, principal_for
from gateway.admin.errors import ApiError
from gateway.auth import AuthError, Principal

SESSION_COOKIE = "aibridge_session"
LOGIN_CSRF_COOKIE = "aibridge_login_csrf"
COOKIE_PATH = "/dashboard"
SESSION_MAX_AGE = 12 * 3600
_CSRF_CONTEXT = b"aibridge-dashboard-csrf-v1"


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a dashboard page, and the CSRF token their forms carry."""

    principal: Principal
    csrf: str

    @property
    def username(self) -> str:
        return self.principal.username

    @property
    def role(self) -> str:
        return self.principal.role

    @property
    def is_admin(self) -> bool:
        return self.principal.role == ADMIN

    @property
    def sees_everyone(self) -> bool:
        return self.principal.role in (ADMIN, AUDITOR)


class LoginRequired(Exception):
    """Rendered as a redirect to the sign-in page (then back to `next_path`)."""

    def __init__(self, next_path: str, reason: str = "") -> None:
        super().__init__(reason or "sign in")
        self.next_path = next_path
        self.reason = reason

    def location(self) -> str:
        target = f"/dashboard/login?next={quote(self.next_path, safe='/')}"
        return target + ("&expired=1" if self.reason else "")


def current_viewer(request: Request, runtime: RuntimeDep) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    next_path = request.url.path if request.method == "GET" else "/dashboard"
    if not token:
        raise LoginRequired(next_path)
    try:
        principal = principal_for(runtime, token)
    except AuthError as exc:
        raise LoginRequired(next_path, exc.message) from exc
    return Viewer(principal, csrf_for(token))


def admin_viewer(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise ApiError(403, "only administrators can change providers")
    return viewer


def reader_viewer(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
    if not viewer.sees_everyone:
        raise ApiError(403, "providers are visible to administrators and auditors")
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]
AdminViewer = Annotated[Viewer, Depends(admin_viewer)]
ReaderViewer = Annotated[Viewer, Depends(reader_viewer)]


def check_csrf(viewer: Viewer, submitted: str) -> None:
    if not submitted or not hmac.compare_digest(viewer.csrf, submitted):
        raise ApiError(403, "this form has expired or was not sent by the dashboard; "
                            "reload the page and try again")


def safe_next(value: str | None) -> str:
    """Only dashboard paths are followed after sign-in (no open redirect)."""
    if value and value.startswith("/dashboard") and "//" not in value and "\\" not in value:
        return value
    return "/dashboard"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_MAX_AGE, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=_secure(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=_secure(request))


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=_secure(request))
