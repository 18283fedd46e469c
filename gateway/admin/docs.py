"""`/api/v2/docs`: the OpenAPI document rendered as one plain HTML page (no script, nothing
fetched from a CDN: the gateway has no internet at run time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    tag: str
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: str | None = None
    responses: list[tuple[str, str, str]] = field(default_factory=list)


def schema_name(schema: dict[str, Any] | None) -> str:
    """A readable type: a component's name, `list[X]`, or the JSON type."""
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{schema_name(schema.get('items'))}]"
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    fmt = schema.get("format")
    return f"{schema.get('type', 'any')}{f' ({fmt})' if fmt else ''}"


def _content_schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    content = obj.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), None)
    return media.get("schema") if media else None


def operations(spec: dict[str, Any]) -> list[Operation]:
    out = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = op.get("requestBody")
            out.append(Operation(
                method=method.upper(), path=path, summary=op.get("summary", ""),
                description=op.get("description", ""), tag=(op.get("tags") or ["other"])[0],
                parameters=[{"name": p["name"], "in": p["in"], "required": p.get("required"),
                             "type": schema_name(p.get("schema")),
                             "description": p.get("description", "")}
                            for p in op.get("parameters", [])],
                body=schema_name(_content_schema(body)) if body else None,
                responses=[(code, r.get("description", ""), schema_name(_content_schema(r)))
                           for code, r in op.get("responses", {}).items()],
            ))
    return out


def components(spec: dict[str, Any]) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    out = []
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        required = set(schema.get("required", []))
        props = [(p, schema_name(s), p in required)
                 for p, s in schema.get("properties", {}).items()]
        out.append((name, props))
    return out


@router.get("/api/v2/docs")
def api_docs(request: Request) -> HTMLResponse:
    spec = request.app.openapi()
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "docs.html",
        {"viewer": None, "spec": spec, "operations": operations(spec),
         "components": components(spec), "notice": None, "path": request.url.path},
    )
    return response
