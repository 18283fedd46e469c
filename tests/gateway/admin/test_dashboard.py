"""The dashboard through its HTML forms (TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from schema.models import AuditLog
from tests.gateway.admin import PUBLIC_URL, Api, add_interception, at, csrf_of, running_api

KEY1 = "sk-ant-api03-dash-first-0123456789"
KEY2 = "sk-ant-api03-dash-second-0123456789"


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    with running_api(tmp_path, db_url) as a:
        a.secrets.update({KEY1, KEY2, *a.tokens.values()})
        yield a


def new_form(api: Api, who: str = "root") -> tuple[TestClient, str]:
    b = api.browser(who)
    page = b.get("/dashboard/providers/_new")
    assert page.status_code == 200
    return b, csrf_of(page.text)


def add(api: Api, b: TestClient, csrf: str, **fields: str) -> Any:
    data = {"csrf": csrf, "type": "anthropic", "name": "anthropic-corp",
            "base_url": PUBLIC_URL, "api_key": KEY1, "enabled": "on", **fields}
    return b.post("/dashboard/providers/_new", data=data)


# --- sign-in ---------------------------------------------------------------------------------


def test_pages_need_sign_in(api: Api) -> None:
    b = api.browser(None)
    for path in ("/dashboard", "/dashboard/providers", "/dashboard/usage",
                 "/dashboard/interceptions"):
        r = b.get(path)
        assert r.status_code == 303 and r.headers["location"] == f"/dashboard/login?next={path}"
    r = b.post("/dashboard/providers/_new", data={"name": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")


def test_sign_in_sets_a_strict_http_only_cookie(api: Api) -> None:
    b = api.browser(None)
    page = b.get("/dashboard/login?next=/dashboard/usage")
    assert page.status_code == 200
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=strict" in login_cookie
    csrf = csrf_of(page.text)
    r = b.post("/dashboard/login", data={"token": api.tokens["root"], "csrf": csrf,
                                         "next": "/dashboard/usage"})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/usage"
    cookie = next(v for k, v in r.headers.multi_items()
                  if k == "set-cookie" and v.startswith("aibridge_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert b.get("/dashboard/usage").status_code == 200


def test_sign_in_needs_the_csrf_token_and_a_valid_token(api: Api) -> None:
    b = api.browser(None)
    csrf = csrf_of(b.get("/dashboard/login").text)
    r = b.post("/dashboard/login", data={"token": api.tokens["root"], "csrf": "forged"})
    assert r.status_code == 403 and "aibridge_session" not in r.headers.get("set-cookie", "")
    r = b.post("/dashboard/login", data={"token": "aib_wrong", "csrf": csrf})
    assert r.status_code == 401 and "Sign-in failed: invalid gateway token." in r.text
    assert "aib_wrong" not in r.text
    r = b.post("/dashboard/login", data={"token": api.tokens["root"], "csrf": csrf,
                                         "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"


def test_sign_out_needs_csrf_and_clears_the_cookie(api: Api) -> None:
    b = api.browser("root")
    page = b.get("/dashboard/providers")
    assert b.post("/dashboard/logout", data={"csrf": "nope"}).status_code == 403
    r = b.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login?notice=signed-out"
    assert b.get("/dashboard/providers").status_code == 303


def test_revoked_token_ends_the_session(api: Api) -> None:
    b = api.browser("root")
    tokens = api.client.get("/api/v2/users/root/tokens", headers=api.auth("root")).json()
    api.client.delete(f"/api/v2/users/root/tokens/{tokens[0]['id']}", headers=api.auth("root"))
    r = b.get("/dashboard/providers")
    assert r.status_code == 303 and "expired=1" in r.headers["location"]


# --- providers -------------------------------------------------------------------------------


def test_add_provider_shows_errors_next_to_fields(api: Api) -> None:
    b, csrf = new_form(api)
    r = add(api, b, csrf, name="Bad_Name", base_url="https://u:p@1.1.1.1")
    assert r.status_code == 422
    html = r.text
    assert re.search(r'id="err-name"[^>]*>use lowercase letters, digits and single hyphens', html)
    assert 'id="name" name="name" value="Bad_Name"' in html
    assert 'aria-invalid="true" aria-describedby="err-name"' in html
    assert KEY1 not in html  # the key typed is not rendered back
    r = add(api, b, csrf, base_url="https://u:p@1.1.1.1")
    assert re.search(r'id="err-base_url"[^>]*>must not contain credentials', r.text)
    r = add(api, b, csrf, api_key="")
    assert re.search(r'id="err-api_key"[^>]*>enter the provider', r.text)
    r = add(api, b, csrf, base_url="http://10.0.0.1")
    assert re.search(r'id="err-base_url"[^>]*>.*private', r.text)
    r = add(api, b, csrf, type="azure")
    assert 'id="err-type"' in r.text
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() == []


def test_add_edit_rotate_disable_delete(api: Api) -> None:
    b, csrf = new_form(api)
    r = add(api, b, csrf, display_name="Anthropic corp")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/providers/anthropic-corp?notice=created"
    listing = b.get("/dashboard/providers").text
    assert 'data-provider="anthropic-corp"' in listing and "sk-a...6789" in listing
    assert PUBLIC_URL in listing and "Enabled" in listing and KEY1 not in listing
    dup = add(api, b, csrf)
    assert re.search(r'id="err-name"[^>]*>a provider named &#39;anthropic-corp&#39; already exists',
                     dup.text)

    edit = b.get("/dashboard/providers/anthropic-corp")
    old_key = re.search(r'name="remove_key" value="([^"]+)"', edit.text)
    assert old_key is not None
    r = b.post("/dashboard/providers/anthropic-corp", data={
        "csrf": csrf_of(edit.text), "display_name": "Anthropic corp", "base_url": "https://8.8.8.8",
        "new_key": KEY2, "remove_key": old_key.group(1)})  # enabled unchecked: disable
    assert r.status_code == 303, r.text
    got = api.client.get("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root")).json()
    assert (got["base_url"], got["enabled"], len(got["api_keys"])) == ("https://8.8.8.8", False, 1)
    assert got["api_keys"][0]["id"] != old_key.group(1)
    assert api.runtime.config is not None
    assert api.runtime.config.snapshot.providers["anthropic-corp"].all_keys == (KEY2,)

    edit = b.get("/dashboard/providers/anthropic-corp")
    assert "Disabled" in edit.text and KEY2 not in edit.text
    bad = b.post("/dashboard/providers/anthropic-corp", data={
        "csrf": csrf_of(edit.text), "display_name": "", "base_url": "nope", "enabled": "on"})
    assert bad.status_code == 422 and 'id="err-base_url"' in bad.text

    confirm = b.get("/dashboard/providers/anthropic-corp/delete")
    assert "Delete provider “anthropic-corp”?" in confirm.text
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() != []
    r = b.post("/dashboard/providers/anthropic-corp/delete",
               data={"csrf": csrf_of(confirm.text)})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/providers?notice=deleted"
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() == []
    with api.session() as s:
        stmt = (select(AuditLog).where(col(AuditLog.actor) == "root")
                .order_by(col(AuditLog.created_at)))
        actions = [a.action for a in s.execute(stmt).scalars()]
    assert actions == ["provider.create", "provider.update", "provider.delete"]


def test_forms_without_csrf_change_nothing(api: Api) -> None:
    b, csrf = new_form(api)
    r = add(api, b, "forged")
    assert r.status_code == 403
    assert "reload the page" in r.text
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() == []
    add(api, b, csrf)
    for path, data in (("/dashboard/providers/anthropic-corp", {"base_url": PUBLIC_URL}),
                       ("/dashboard/providers/anthropic-corp/delete", {})):
        r = b.post(path, data=data)
        assert r.status_code == 403, path
    got = api.client.get("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"))
    assert got.status_code == 200 and got.json()["enabled"] is True


def test_auditor_reads_without_keys_and_cannot_change(api: Api) -> None:
    b, csrf = new_form(api)
    add(api, b, csrf)
    aud = api.browser("audrey")
    listing = aud.get("/dashboard/providers")
    assert listing.status_code == 200 and "anthropic-corp" in listing.text
    assert "sk-a..." not in listing.text and "Add provider" not in listing.text
    view = aud.get("/dashboard/providers/anthropic-corp")
    assert view.status_code == 200 and "<fieldset disabled>" in view.text
    assert 'name="remove_key"' not in view.text and "Save changes" not in view.text
    for path in ("/dashboard/providers/_new", "/dashboard/providers/anthropic-corp/delete"):
        assert aud.get(path).status_code == 403
    r = aud.post("/dashboard/providers/anthropic-corp/delete", data={"csrf": csrf_of(view.text)})
    assert r.status_code == 403
    assert api.client.get("/api/v2/ai/providers", headers=api.auth("root")).json() != []


def test_member_sees_only_their_usage(api: Api) -> None:
    add_interception(api, user="mia", started_at=at(1), model="claude-haiku", prompt="mia asks")
    bob = add_interception(api, user="bob", started_at=at(1), model="gpt-5", prompt="bob asks")
    m = api.browser("mia")
    assert m.get("/dashboard").headers["location"] == "/dashboard/usage"
    assert m.get("/dashboard/providers").status_code == 403
    usage = m.get("/dashboard/usage").text
    assert "claude-haiku" in usage and "gpt-5" not in usage and "bob" not in usage
    assert 'id="chart-by-user"' not in usage
    listing = m.get("/dashboard/interceptions").text
    assert "mia asks" in listing and "bob asks" not in listing
    assert m.get(f"/dashboard/interceptions/{bob}").status_code == 404


# --- usage and interceptions -----------------------------------------------------------------


def test_usage_page_has_charts_and_top_users(api: Api) -> None:
    add_interception(api, user="mia", started_at=at(2), model="claude-opus-4",
                     tokens=(1000, 500, 0, 0))
    add_interception(api, user="bob", started_at=at(1), model="gpt-5", tokens=(300, 200, 0, 0))
    add_interception(api, user="bob", started_at=at(0, hour=0), model="claude-opus-4",
                     tokens=(10, 5, 0, 0))
    r = api.browser("audrey").get("/dashboard/usage?days=7")
    assert r.status_code == 200
    html = r.text
    by_model = html.split('id="chart-by-model"')[1].split("</figure>")[0]
    by_user = html.split('id="chart-by-user"')[1].split("</figure>")[0]
    assert "<svg" in by_model and "<svg" in by_user
    assert "claude-opus-4 (1.5k)" in by_model and "gpt-5 (500)" in by_model  # legend
    assert "mia (1.5k)" in by_user and "bob (515)" in by_user
    assert "input + output tokens" in by_model and "day (UTC)" in by_model  # axis titles
    assert f"claude-opus-4, {at(2).date().isoformat()}: 1,500 tokens" in by_model
    top = html.split('id="top-users"')[1].split("</table>")[0]
    assert top.index(">mia<") < top.index(">bob<")  # by tokens, most first
    assert 'id="total-tokens">2,015<' in html and 'id="total-interceptions">3<' in html


def test_names_from_requests_are_escaped(api: Api) -> None:
    evil = '<script>alert(1)</script>'
    iid = add_interception(api, user="mia", started_at=at(1), model=evil, prompt=evil,
                           tools=[(evil, evil)], thoughts=[evil])
    b = api.browser("root")
    for path in ("/dashboard/usage", "/dashboard/interceptions", f"/dashboard/interceptions/{iid}"):
        html = b.get(path).text
        assert "<script>" not in html and "&lt;script&gt;" in html, path


def test_interceptions_search_filters_and_detail(api: Api) -> None:
    a = add_interception(api, user="mia", started_at=at(2), model="claude-opus-4",
                         prompt="refactor the parser", tokens=(1234, 56, 7, 8),
                         tools=[("read_file", '{"path": "parser.py"}')],
                         thoughts=["Start with the tokenizer."])
    add_interception(api, user="bob", started_at=at(1), provider="openai", model="gpt-5",
                     client="Codex", prompt="write tests")
    b = api.browser("root")
    page = b.get("/dashboard/interceptions?q=parser").text
    assert "refactor the parser" in page and "write tests" not in page
    page = b.get("/dashboard/interceptions?client=Codex").text
    assert "write tests" in page and "refactor the parser" not in page
    page = b.get("/dashboard/interceptions").text
    assert '<option value="Codex">' in page and '<option value="mia">' in page
    detail = b.get(f"/dashboard/interceptions/{a}")
    assert detail.status_code == 200
    html = detail.text
    assert '<pre class="block" id="prompt">refactor the parser</pre>' in html
    assert "read_file" in html and "{&#34;path&#34;: &#34;parser.py&#34;}" in html
    assert "Start with the tokenizer." in html
    assert 'id="in-tokens">1,234<' in html and 'id="out-tokens">56<' in html
    assert b.get("/dashboard/interceptions/00000000-0000-0000-0000-000000000000").status_code == 404


def test_interceptions_pagination(api: Api) -> None:
    for i in range(55):
        add_interception(api, user="bob", started_at=at(1, minute=i), prompt=f"prompt #{i}")
    b = api.browser("root")
    first = b.get("/dashboard/interceptions").text
    assert first.count('<td class="prompt">') == 50 and "prompt #54" in first
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None
    second = b.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('<td class="prompt">') == 5 and "prompt #0<" in second
    assert 'id="older"' not in second


def test_html_pages_send_security_headers(api: Api) -> None:
    b = api.browser("root")
    r = b.get("/dashboard/providers")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script" not in csp
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    assert '<link rel="stylesheet" href="/dashboard/static/style.css">' in r.text
    css = b.get("/dashboard/static/style.css")
    assert css.status_code == 200 and "svg.chart" in css.text


def test_dashboard_errors_are_pages(api: Api) -> None:
    b = api.browser("root")
    for path, status in (("/dashboard/interceptions/not-a-uuid", 422),
                         ("/dashboard/interceptions?cursor=bogus", 422),
                         ("/dashboard/providers/nope", 404), ("/dashboard/nothing", 404)):
        r = b.get(path)
        assert r.status_code == status, path
        assert r.headers["content-type"].startswith("text/html")
        assert 'role="alert"' in r.text
