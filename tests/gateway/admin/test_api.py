"""The admin API against a real Runtime on SQLite and PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.admin import create_app
from schema.models import ProviderKey
from tests.gateway.admin import PUBLIC_URL, Api, at, running_api

KEY1 = "sk-ant-api03-first-0123456789abcdef"
KEY2 = "sk-ant-api03-second-0123456789abcdef"
KEY3 = "sk-ant-api03-third-0123456789abcdef"


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    with running_api(tmp_path, db_url) as a:
        a.secrets.update({KEY1, KEY2, KEY3})
        yield a


@pytest.fixture
def private_api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    with running_api(tmp_path, db_url, allow_private=True) as a:
        a.secrets.update({KEY1, KEY2, KEY3})
        yield a


def create(api: Api, who: str = "root", **body: Any) -> Any:
    payload = {"type": "anthropic", "name": "anthropic-corp", "base_url": PUBLIC_URL,
               "api_keys": [KEY1], **body}
    return api.client.post("/api/v2/ai/providers", json=payload, headers=api.auth(who))


# --- providers: CRUD -------------------------------------------------------------------------


def test_create_list_get_patch_delete(api: Api) -> None:
    r = create(api, display_name="Anthropic (corp)")
    assert r.status_code == 201, r.text
    p = r.json()
    assert set(p) == {"id", "type", "name", "display_name", "enabled", "base_url", "api_keys",
                      "created_at", "updated_at"}
    assert (p["type"], p["name"], p["display_name"], p["enabled"], p["base_url"]) == (
        "anthropic", "anthropic-corp", "Anthropic (corp)", True, PUBLIC_URL)
    assert [set(k) for k in p["api_keys"]] == [{"id", "masked", "created_at"}]
    assert p["api_keys"][0]["masked"] == "sk-a...cdef"

    listed = api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json()
    assert [x["name"] for x in listed] == ["anthropic-corp"]
    by_name = api.client.get("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"))
    by_id = api.client.get(f"/api/v2/ai/providers/{p['id']}", headers=api.auth("root"))
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json() == by_id.json() == p

    r = api.client.patch("/api/v2/ai/providers/anthropic-corp", json={"enabled": False},
                         headers=api.auth("root"))
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["enabled"] is False
    assert {k: v for k, v in patched.items() if k not in ("enabled", "updated_at")} == {
        k: v for k, v in p.items() if k not in ("enabled", "updated_at")}
    assert api.runtime.config is not None
    assert api.runtime.config.snapshot.providers["anthropic-corp"].enabled is False

    r = api.client.delete("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"))
    assert r.status_code == 204 and r.content == b""
    r = api.client.get("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"))
    assert r.status_code == 404
    assert r.json() == {"message": "no provider named 'anthropic-corp'"}
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() == []
    assert "anthropic-corp" not in api.runtime.config.snapshot.providers
    with api.session() as s:
        assert list(s.execute(select(ProviderKey)).scalars()) == []


def test_default_base_url_for_a_known_type(private_api: Api) -> None:
    r = private_api.client.post("/api/v2/ai/providers", headers=private_api.auth("root"), json={
        "type": "openai", "name": "openai", "api_keys": ["sk-openai-0123456789abcd"]})
    assert r.status_code == 201, r.text
    assert r.json()["base_url"] == "https://api.openai.com/v1"


def test_duplicate_live_name_is_409_and_reusable_after_delete(api: Api) -> None:
    first = create(api)
    assert first.status_code == 201
    dup = create(api, api_keys=[KEY2])
    assert dup.status_code == 409
    assert dup.json() == {"message": "a provider named 'anthropic-corp' already exists",
                          "field": "name"}
    assert api.client.delete("/api/v2/ai/providers/anthropic-corp",
                             headers=api.auth("root")).status_code == 204
    again = create(api, api_keys=[KEY2], type="openai-compat")
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert again.json()["type"] == "openai-compat"
    # The old id stays deleted.
    old = api.client.get(f"/api/v2/ai/providers/{first.json()['id']}", headers=api.auth("root"))
    assert old.status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"name": "Anthropic"}, "name"),
    ({"name": "anthropic_corp"}, "name"),
    ({"name": "-anthropic"}, "name"),
    ({"name": "a--b"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "a" * 64}, "name"),
    ({"type": "azure"}, "type"),
    ({"base_url": "https://user:pass@1.1.1.1/v1"}, "base_url"),
    ({"base_url": "https://key@1.1.1.1"}, "base_url"),
    ({"base_url": "ftp://1.1.1.1"}, "base_url"),
    ({"base_url": "/v1/messages"}, "base_url"),
    ({"base_url": "https://1.1.1.1/v1?key=x"}, "base_url"),
    ({"base_url": " https://1.1.1.1"}, "base_url"),
    ({"api_keys": []}, "api_keys"),
    ({"api_keys": [""]}, "api_keys"),
    ({"api_keys": [" sk-ant-padded-0123456789"]}, "api_keys"),
    ({"api_keys": ["sk-ant-trailing-0123456789\n"]}, "api_keys"),
    ({"api_keys": ["sk ant with spaces"]}, "api_keys"),
    ({"extra": 1}, "extra"),
])
def test_invalid_create_is_422_with_field(api: Api, body: dict[str, Any], field: str) -> None:
    r = create(api, **body)
    assert r.status_code == 422, r.text
    out = r.json()
    assert set(out) == {"message", "field"} and out["field"] == field, out
    assert out["message"]
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://10.1.2.3", "http://192.168.1.1",
                                 "http://169.254.169.254", "http://localhost:8080",
                                 "http://[::1]:80", "http://[fd00:ec2::254]", "http://0.0.0.0"])
def test_private_upstreams_refused_without_the_setting(api: Api, url: str) -> None:
    r = create(api, base_url=url)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "base_url"
    assert "--ai-gateway-allow-private-upstreams" in r.json()["message"]
    # ... and on PATCH too.
    assert create(api, name="public").status_code == 201
    r = api.client.patch("/api/v2/ai/providers/public", json={"base_url": url},
                         headers=api.auth("root"))
    assert r.status_code == 422 and r.json()["field"] == "base_url"
    got = api.client.get("/api/v2/ai/providers/public", headers=api.auth("root")).json()
    assert got["base_url"] == PUBLIC_URL


def test_private_upstreams_allowed_with_the_setting(private_api: Api) -> None:
    r = create(private_api, base_url="http://127.0.0.1:9")
    assert r.status_code == 201, r.text
    assert r.json()["base_url"] == "http://127.0.0.1:9"
    r = private_api.client.patch("/api/v2/ai/providers/anthropic-corp",
                                 json={"base_url": "http://169.254.169.254/"},
                                 headers=private_api.auth("root"))
    assert r.status_code == 200 and r.json()["base_url"] == "http://169.254.169.254"


def test_key_rotation_through_patch(api: Api) -> None:
    p = create(api, api_keys=[KEY1, KEY2]).json()
    k1, k2 = (k["id"] for k in p["api_keys"])
    assert [k["masked"] for k in p["api_keys"]] == ["sk-a...cdef", "sk-a...cdef"]
    r = api.client.patch("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"),
                         json={"api_keys": [{"api_key": KEY3}, {"id": k1}]})
    assert r.status_code == 200, r.text
    keys = r.json()["api_keys"]
    assert len(keys) == 2 and keys[1]["id"] == k1 and keys[0]["id"] not in (k1, k2)
    assert r.json()["display_name"] == p["display_name"] and r.json()["enabled"] is True
    assert api.runtime.config is not None
    route = api.runtime.config.snapshot.providers["anthropic-corp"]
    assert route.all_keys == (KEY3, KEY1) and route.api_key == KEY3

    bad = api.client.patch("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"),
                           json={"api_keys": [{"id": k2}]})
    assert bad.status_code == 422 and bad.json()["field"] == "api_keys"
    assert "unknown key id" in bad.json()["message"]
    bodies: tuple[dict[str, Any], ...] = (
        {"api_keys": []}, {"api_keys": [{"api_key": " padded-key-0123456789"}]},
        {"api_keys": [{"id": k1, "api_key": KEY2}]}, {"api_keys": [{}]})
    for body in bodies:
        r = api.client.patch("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"),
                             json=body)
        assert r.status_code == 422 and r.json()["field"] == "api_keys", (body, r.text)
    assert api.runtime.config.snapshot.providers["anthropic-corp"].all_keys == (KEY3, KEY1)


def test_patch_unknown_provider_is_404(api: Api) -> None:
    r = api.client.patch("/api/v2/ai/providers/nope", json={"enabled": False},
                         headers=api.auth("root"))
    assert r.status_code == 404 and r.json() == {"message": "no provider named 'nope'"}
    r = api.client.delete(f"/api/v2/ai/providers/{uuid.uuid4()}", headers=api.auth("root"))
    assert r.status_code == 404


def test_plaintext_keys_never_in_any_response(api: Api) -> None:
    create(api, api_keys=[KEY1, KEY2])
    api.client.patch("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"),
                     json={"api_keys": [{"api_key": KEY3}]})
    for path in ("/api/v2/ai/providers", "/api/v2/ai/providers/anthropic-corp",
                 "/api/v2/audit", "/api/v2/openapi.json"):
        for who in ("root", "audrey"):
            api.client.get(path, headers=api.auth(who))
    create(api, api_keys=[KEY1])  # 409 echoes nothing either
    create(api, name="BAD", api_keys=[KEY2])
    assert len(api.bodies) >= 10
    assert api.leaked() == []


# --- authorization ---------------------------------------------------------------------------


ROLE_MATRIX = [
    # method, path, body, admin, auditor, member
    ("GET", "/api/v2/ai/providers", None, 200, 200, 403),
    ("POST", "/api/v2/ai/providers", "create", 201, 403, 403),
    ("GET", "/api/v2/ai/providers/p1", None, 200, 200, 403),
    ("PATCH", "/api/v2/ai/providers/p1", {"enabled": False}, 200, 403, 403),
    ("DELETE", "/api/v2/ai/providers/p2", None, 204, 403, 403),
    ("GET", "/api/v2/users", None, 200, 403, 403),
    ("POST", "/api/v2/users", {"username": "newbie"}, 201, 403, 403),
    ("GET", "/api/v2/users/mia", None, 200, 403, 403),
    ("PATCH", "/api/v2/users/bob", {"role": "auditor"}, 200, 403, 403),
    ("GET", "/api/v2/users/mia/tokens", None, 200, 403, 403),
    ("POST", "/api/v2/users/mia/tokens", {"name": "ci"}, 201, 403, 403),
    ("GET", "/api/v2/aibridge/interceptions", None, 200, 200, 200),
    ("GET", "/api/v2/aibridge/usage?group_by=model", None, 200, 200, 200),
    ("GET", "/api/v2/audit", None, 200, 403, 403),
]


@pytest.mark.parametrize("who,column", [("root", 3), ("audrey", 4), ("mia", 5)])
def test_role_rules(api: Api, who: str, column: int) -> None:
    for name in ("p1", "p2"):
        assert create(api, name=name).status_code == 201
    for row in ROLE_MATRIX:
        method, path, body = row[0], row[1], row[2]
        json_body = ({"type": "openai", "name": "p3", "base_url": PUBLIC_URL, "api_keys": [KEY2]}
                     if body == "create" else body)
        r = api.client.request(str(method), str(path), json=json_body, headers=api.auth(who))
        assert r.status_code == row[column], (who, method, path, r.text)
        if r.status_code == 403:
            assert "role" in r.json()["message"]
    if who == "audrey":
        listed = api.client.get("/api/v2/ai/providers", headers=api.auth(who)).json()
        assert [p["api_keys"] for p in listed] == [[], []]  # auditors: no keys at all


@pytest.mark.parametrize("headers,message", [
    ({}, "missing gateway token"),
    ({"Authorization": "Bearer aib_not-a-real-token"}, "invalid gateway token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "the Authorization header must use the Bearer"),
    ({"X-Api-Key": "sk-ant-something"}, "invalid gateway token"),
])
def test_missing_or_bad_token_is_401(api: Api, headers: dict[str, str], message: str) -> None:
    for path in ("/api/v2/ai/providers", "/api/v2/aibridge/interceptions", "/api/v2/audit",
                 "/api/v2/users"):
        r = api.client.get(path, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["message"].startswith(message)
        assert r.headers["www-authenticate"] == "Bearer"


def test_x_api_key_header_is_accepted(api: Api) -> None:
    r = api.client.get("/api/v2/ai/providers", headers={"X-Api-Key": api.tokens["root"]})
    assert r.status_code == 200


def test_revoked_expired_and_disabled_are_401(api: Api) -> None:
    tokens = api.client.get("/api/v2/users/mia/tokens", headers=api.auth("root")).json()
    r = api.client.delete(f"/api/v2/users/mia/tokens/{tokens[0]['id']}", headers=api.auth("root"))
    assert r.status_code == 204
    r = api.client.get("/api/v2/aibridge/interceptions", headers=api.auth("mia"))
    assert r.status_code == 401 and r.json()["message"] == "this gateway token has been revoked"

    past = (at(days_ago=1)).isoformat()
    made = api.client.post("/api/v2/users/bob/tokens", json={"name": "old", "expires_at": past},
                           headers=api.auth("root"))
    assert made.status_code == 201
    r = api.client.get("/api/v2/aibridge/interceptions",
                       headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert r.status_code == 401 and r.json()["message"] == "this gateway token has expired"

    r = api.client.patch("/api/v2/users/bob", json={"disabled": True}, headers=api.auth("root"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    r = api.client.get("/api/v2/aibridge/interceptions", headers=api.auth("bob"))
    assert r.status_code == 401 and r.json()["message"] == "this user is disabled"


def test_runtime_not_ready_is_503() -> None:
    client = TestClient(create_app(lambda: None))
    r = client.get("/api/v2/ai/providers", headers={"Authorization": "Bearer aib_x"})
    assert r.status_code == 503
    assert r.json() == {"message": "aibridge is starting; retry shortly"}


# --- users and tokens ------------------------------------------------------------------------


def test_users_and_tokens(api: Api) -> None:
    r = api.client.post("/api/v2/users", json={"username": "carol", "role": "auditor"},
                        headers=api.auth("root"))
    assert r.status_code == 201, r.text
    assert (r.json()["username"], r.json()["role"], r.json()["disabled"]) == (
        "carol", "auditor", False)
    dup = api.client.post("/api/v2/users", json={"username": "carol"}, headers=api.auth("root"))
    assert dup.status_code == 409 and dup.json()["field"] == "username"
    bad = api.client.post("/api/v2/users", json={"username": "-x"}, headers=api.auth("root"))
    assert bad.status_code == 422 and bad.json()["field"] == "username"
    bad = api.client.post("/api/v2/users", json={"username": "dan", "role": "owner"},
                          headers=api.auth("root"))
    assert bad.status_code == 422 and bad.json()["field"] == "role"
    names = [u["username"] for u in api.client.get("/api/v2/users",
                                                   headers=api.auth("root")).json()]
    assert names == sorted(["audrey", "bob", "carol", "mia", "root"])

    made = api.client.post("/api/v2/users/carol/tokens", json={"name": "laptop"},
                           headers=api.auth("root"))
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("aib_") and made.json()["username"] == "carol"
    # Usable at once (the snapshot is reloaded after the change), with the auditor's rights.
    carol = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v2/aibridge/usage", headers=carol).status_code == 200
    assert api.client.get("/api/v2/users", headers=carol).status_code == 403
    listed = api.client.get("/api/v2/users/carol/tokens", headers=api.auth("root"))
    assert [t["name"] for t in listed.json()] == ["laptop"]
    assert token not in listed.text and "token" not in listed.json()[0]

    r = api.client.delete(f"/api/v2/users/mia/tokens/{made.json()['id']}",
                          headers=api.auth("root"))
    assert r.status_code == 404  # carol's token, not mia's
    r = api.client.delete(f"/api/v2/users/carol/tokens/{made.json()['id']}",
                          headers=api.auth("root"))
    assert r.status_code == 204
    assert api.client.get("/api/v2/aibridge/usage", headers=carol).status_code == 401
    r = api.client.get("/api/v2/users/nobody", headers=api.auth("root"))
    assert r.status_code == 404 and r.json() == {"message": "no user named 'nobody'"}


def test_admin_cannot_demote_or_disable_themselves(api: Api) -> None:
    for body, field in (({"role": "member"}, "role"), ({"disabled": True}, "disabled")):
        r = api.client.patch("/api/v2/users/root", json=body, headers=api.auth("root"))
        assert r.status_code == 409 and r.json()["field"] == field
    assert api.client.get("/api/v2/users", headers=api.auth("root")).status_code == 200


# --- documents, errors -----------------------------------------------------------------------


def test_openapi_and_docs_are_served(api: Api) -> None:
    spec = api.client.get("/api/v2/openapi.json").json()
    assert {"/api/v2/ai/providers", "/api/v2/ai/providers/{ref}", "/api/v2/users",
            "/api/v2/users/{username}/tokens", "/api/v2/aibridge/interceptions",
            "/api/v2/aibridge/interceptions/{interception_id}", "/api/v2/aibridge/usage",
            "/api/v2/audit"} <= set(spec["paths"])
    assert not any(p.startswith("/dashboard") for p in spec["paths"])
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    post = spec["paths"]["/api/v2/ai/providers"]["post"]
    assert set(post["responses"]) == {"201", "400", "401", "403", "409", "422", "503"}
    assert post["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"}
    docs = api.client.get("/api/v2/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/api/v2/ai/providers/{ref}" in docs.text and "ProviderCreate" in docs.text
    assert "<script" not in docs.text and "cdn" not in docs.text.lower()


def test_unknown_paths_and_methods_are_json_errors(api: Api) -> None:
    r = api.client.get("/api/v2/nothing-here", headers=api.auth("root"))
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}
    r = api.client.put("/api/v2/ai/providers", headers=api.auth("root"))
    assert r.status_code == 405 and r.json() == {"message": "Method Not Allowed"}
    r = api.client.post("/api/v2/ai/providers", content=b"{not json",
                        headers={**api.auth("root"), "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
