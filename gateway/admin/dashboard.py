"""Dashboard (Admin settings > AI > Providers): sign-in, the providers list, add (at
`providers/_new`: `_` is never in a provider name), edit
(rotate keys, change the endpoint, enable/disable) and delete with a confirmation step.

Server-rendered Jinja2 pages; forms POST back with a CSRF token; no script at all.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from gateway.admin import forms
from gateway.admin.deps import DbDep, RuntimeDep, actor_of, commit, principal_for
from gateway.admin.session import (
    LOGIN_CSRF_COOKIE,
    AdminViewer,
    LoginRequired,
    ReaderViewer,
    Viewer,
    ViewerDep,
    check_csrf,
    clear_session,
    new_login_csrf,
    safe_next,
    set_login_csrf,
    set_session,
)
from gateway.auth import AuthError
from gateway.models import ProviderPublic
from gateway.runtime import url_checker
from gateway.store import providers as store
from gateway.store.errors import Conflict
from gateway.validation import InvalidField

router = APIRouter(prefix="/dashboard", include_in_schema=False)
FormStr = Annotated[str, Form()]
NOTICES = {
    "created": "Provider added. Its route is live now.",
    "updated": "Provider saved.",
    "deleted": "Provider deleted. Its name can be used again.",
    "signed-out": "You are signed out.",
}


def render(request: Request, template: str, viewer: Viewer | None, status: int = 200,
           **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    notice = NOTICES.get(request.query_params.get("notice", ""))
    ctx = {"viewer": viewer, "notice": notice, "path": request.url.path, **context}
    response: HTMLResponse = templates.TemplateResponse(request, template, ctx,
                                                        status_code=status)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", None, status=status, status_code=status,
                  message=message)


def see_other(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def install(app: FastAPI) -> None:
    async def on_login_required(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return see_other(exc.location())

    app.add_exception_handler(LoginRequired, on_login_required)


# --- sign in / out ---------------------------------------------------------------------------


@router.get("")
def index(viewer: ViewerDep) -> RedirectResponse:
    return see_other("/dashboard/providers" if viewer.sees_everyone else "/dashboard/usage")


def _login_page(request: Request, next_path: str, error: str | None = None,
                status: int = 200) -> HTMLResponse:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    expired = request.query_params.get("expired") == "1"
    response = render(request, "login.html", None, status=status, csrf=csrf,
                      next=safe_next(next_path), error=error, expired=expired)
    set_login_csrf(request, response, csrf)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/dashboard") -> HTMLResponse:
    return _login_page(request, next)


@router.post("/login")
def login(request: Request, runtime: RuntimeDep, token: FormStr = "", csrf: FormStr = "",
          next: FormStr = "/dashboard") -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf):
        return _login_page(request, next, "The sign-in form expired; try again.", status=403)
    try:
        principal_for(runtime, token.strip())
    except AuthError as exc:
        return _login_page(request, next, f"Sign-in failed: {exc.message}.", status=401)
    response = see_other(safe_next(next))
    set_session(request, response, token.strip())
    return response


@router.post("/logout")
def logout(request: Request, viewer: ViewerDep, csrf: FormStr = "") -> Response:
    check_csrf(viewer, csrf)
    response = see_other("/dashboard/login?notice=signed-out")
    clear_session(request, response)
    return response


# --- providers -------------------------------------------------------------------------------


@router.get("/providers")
def providers_page(request: Request, viewer: ReaderViewer, session: DbDep) -> HTMLResponse:
    providers = [store.to_public(session, p) for p in store.list_providers(session)]
    return render(request, "providers.html", viewer, providers=providers,
                  types={t.name: t.label for t in forms.type_choices()})


def _form(request: Request, viewer: Viewer, *, values: dict[str, Any],
          errors: forms.FormErrors | None = None, provider: ProviderPublic | None = None
          ) -> HTMLResponse:
    return render(request, "provider_form.html", viewer, status=422 if errors else 200,
                  values=values, errors=(errors.by_field if errors else {}),
                  provider=provider, types=forms.type_choices(), key_help=forms.KEY_HELP)


@router.get("/providers/_new")
def new_provider_form(request: Request, viewer: AdminViewer) -> HTMLResponse:
    return _form(request, viewer, values={"type": "anthropic", "enabled": True})


@router.post("/providers/_new")
def create_provider(request: Request, viewer: AdminViewer, session: DbDep,
                    runtime: RuntimeDep, csrf: FormStr = "", type: FormStr = "",
                    name: FormStr = "", display_name: FormStr = "", base_url: FormStr = "",
                    api_key: FormStr = "", enabled: FormStr = "") -> Response:
    check_csrf(viewer, csrf)
    values = {"type": type, "name": name, "display_name": display_name,
              "base_url": base_url, "enabled": bool(enabled)}
    assert runtime.keyring is not None
    try:
        data = forms.new_provider(type_=type, name=name, display_name=display_name,
                                  base_url=base_url, api_key=api_key, enabled=bool(enabled))
        provider = store.create_provider(session, data=data, keyring=runtime.keyring,
                                         actor=actor_of(viewer.principal),
                                         check_url=url_checker(runtime.settings))
        commit(session, runtime)
    except (InvalidField, Conflict, ValidationError) as exc:
        session.rollback()
        return _form(request, viewer, values=values, errors=forms.from_exception(exc))
    return see_other(f"/dashboard/providers/{provider.name}?notice=created")


@router.get("/providers/{name}")
def edit_provider_form(request: Request, name: str, viewer: ReaderViewer,
                       session: DbDep) -> HTMLResponse:
    provider = store.to_public(session, store.get_provider(session, ref=name))
    values = {"display_name": provider.display_name, "base_url": provider.base_url,
              "enabled": provider.enabled}
    return _form(request, viewer, values=values, provider=provider)


@router.post("/providers/{name}")
def update_provider(request: Request, name: str, viewer: AdminViewer, session: DbDep,
                    runtime: RuntimeDep, csrf: FormStr = "", display_name: FormStr = "",
                    base_url: FormStr = "", enabled: FormStr = "", new_key: FormStr = "",
                    remove_key: Annotated[list[str] | None, Form()] = None) -> Response:
    check_csrf(viewer, csrf)
    row = store.get_provider(session, ref=name)
    current = store.to_public(session, row)
    values = {"display_name": display_name, "base_url": base_url, "enabled": bool(enabled)}
    assert runtime.keyring is not None
    try:
        changes = forms.provider_changes(current, display_name=display_name,
                                         base_url=base_url, enabled=bool(enabled),
                                         new_key=new_key, remove=remove_key or [])
        store.update_provider(session, provider=row, changes=changes, keyring=runtime.keyring,
                              actor=actor_of(viewer.principal),
                              check_url=url_checker(runtime.settings))
        commit(session, runtime)
    except (InvalidField, Conflict, ValidationError) as exc:
        session.rollback()
        return _form(request, viewer, values=values, errors=forms.from_exception(exc),
                     provider=current)
    return see_other(f"/dashboard/providers/{current.name}?notice=updated")


@router.get("/providers/{name}/delete")
def delete_confirmation(request: Request, name: str, viewer: AdminViewer,
                        session: DbDep) -> HTMLResponse:
    provider = store.to_public(session, store.get_provider(session, ref=name))
    return render(request, "provider_delete.html", viewer, provider=provider)


@router.post("/providers/{name}/delete")
def delete_provider(name: str, viewer: AdminViewer, session: DbDep, runtime: RuntimeDep,
                    csrf: FormStr = "") -> Response:
    check_csrf(viewer, csrf)
    store.delete_provider(session, provider=store.get_provider(session, ref=name),
                          actor=actor_of(viewer.principal))
    commit(session, runtime)
    return see_other("/dashboard/providers?notice=deleted")
