"""The admin app: AI Providers API, users/tokens, interceptions, usage, audit, the dashboard.

Served by mitmproxy on the gateway's own listener (addons/admin.py) and by TestClient in
tests. `create_app(runtime_provider)` builds it; nothing is created at import time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from gateway.admin import api_providers, api_records, api_users, dashboard, docs, usage_pages
from gateway.admin import errors as admin_errors
from gateway.admin.deps import RuntimeProvider

HERE = Path(__file__).resolve().parent
OPENAPI_URL = "/api/v2/openapi.json"
DOCS_URL = "/api/v2/docs"
DASHBOARD = "/dashboard"
STATIC_URL = "/dashboard/static"

# No script, no inline style, nothing from elsewhere: the pages are plain HTML forms and SVG.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def _security_headers(response: Response) -> None:
    headers = response.headers
    headers.setdefault("x-content-type-options", "nosniff")
    headers.setdefault("referrer-policy", "no-referrer")
    headers.setdefault("x-frame-options", "DENY")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("content-security-policy", CSP)
        headers.setdefault("cache-control", "no-store")


def create_app(runtime_provider: RuntimeProvider) -> FastAPI:
    """The admin ASGI app; `runtime_provider()` returns the live Runtime (or None)."""
    app = FastAPI(
        title="aibridge admin API",
        version="2",
        description="AI providers, users and tokens, recorded interceptions and usage. "
        "Authenticate with a gateway token (`Authorization: Bearer` or `X-Api-Key`).",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime_provider = runtime_provider
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["static_url"] = STATIC_URL
    app.state.templates = templates
    for router in (api_providers.router, api_users.router, api_records.router,
                   api_records.audit_router, dashboard.router, usage_pages.router,
                   docs.router):
        app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=str(HERE / "static")), name="static")
    admin_errors.install(app, html_error=dashboard.error_page, html_prefix=DASHBOARD)
    dashboard.install(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(DASHBOARD, status_code=303)

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        _security_headers(response)
        return response

    return app


__all__ = ["DOCS_URL", "OPENAPI_URL", "create_app"]
