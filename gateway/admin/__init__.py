"""The admin API and dashboard, served on the gateway's listener (see addons/admin.py).

    app = create_app(lambda: gateway.runtime)

`/api/v2/ai/providers`, `/api/v2/users`, `/api/v2/aibridge/interceptions`, `/api/v2/aibridge/usage`,
`/api/v2/audit` (OpenAPI at `/api/v2/openapi.json`, docs at `/api/v2/docs`) and the dashboard
under `/dashboard`.
"""

from gateway.admin.app import DOCS_URL, OPENAPI_URL, create_app

__all__ = ["DOCS_URL", "OPENAPI_URL", "create_app"]
