"""The admin API's read side against a real Runtime (SQLite and PostgreSQL): interceptions
(role rules, filters, cursor pagination, detail), usage totals and the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from schema.models import AuditLog
from tests.gateway.admin import PUBLIC_URL, Api, add_interception, at, running_api

KEY1 = "sk-ant-api03-records-first-0123456789"
KEY2 = "sk-ant-api03-records-second-0123456789"


@pytest.fixture
def api(tmp_path: Path, db_url: str) -> Iterator[Api]:
    with running_api(tmp_path, db_url) as a:
        a.secrets.update({KEY1, KEY2})
        yield a


def create(api: Api, **body: Any) -> Any:
    payload = {"type": "anthropic", "name": "anthropic-corp", "base_url": PUBLIC_URL,
               "api_keys": [KEY1], **body}
    return api.client.post("/api/v2/ai/providers", json=payload, headers=api.auth("root"))


# --- interceptions, usage --------------------------------------------------------------------


def test_member_sees_only_their_own_interceptions(api: Api) -> None:
    mine = add_interception(api, user="mia", started_at=at(1), prompt="mia's secret plan")
    theirs = add_interception(api, user="bob", started_at=at(0), prompt="bob's prompt",
                              tokens=(100, 50, 0, 0))
    r = api.client.get("/api/v2/aibridge/interceptions", headers=api.auth("mia"))
    assert [i["id"] for i in r.json()["items"]] == [str(mine)]
    r = api.client.get("/api/v2/aibridge/interceptions?user=bob", headers=api.auth("mia"))
    assert r.status_code == 403
    r = api.client.get("/api/v2/aibridge/interceptions?user=mia", headers=api.auth("mia"))
    assert [i["id"] for i in r.json()["items"]] == [str(mine)]
    r = api.client.get(f"/api/v2/aibridge/interceptions/{theirs}", headers=api.auth("mia"))
    assert r.status_code == 404
    r = api.client.get(f"/api/v2/aibridge/interceptions/{mine}", headers=api.auth("mia"))
    assert r.status_code == 200 and r.json()["prompt"] == "mia's secret plan"
    usage = api.client.get("/api/v2/aibridge/usage?group_by=user", headers=api.auth("mia"))
    assert [(u["key"], u["input_tokens"]) for u in usage.json()["items"]] == [("mia", 10)]
    for who in ("root", "audrey"):
        r = api.client.get("/api/v2/aibridge/interceptions", headers=api.auth(who))
        assert [i["id"] for i in r.json()["items"]] == [str(theirs), str(mine)]
        usage = api.client.get("/api/v2/aibridge/usage?group_by=user", headers=api.auth(who))
        assert [(u["key"], u["input_tokens"]) for u in usage.json()["items"]] == [
            ("bob", 100), ("mia", 10)]


def test_pagination_with_cursor(api: Api) -> None:
    base = at(3)
    ids = [add_interception(api, user="bob", started_at=base + timedelta(minutes=i))
           for i in range(6)]
    # Two at the very same instant: the cursor breaks the tie by id.
    ids += [add_interception(api, user="bob", started_at=base + timedelta(minutes=10))
            for _ in range(2)]
    expected = [str(i) for i in sorted(ids[6:], reverse=True)] + [str(i) for i in reversed(ids[:6])]
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = api.client.get("/api/v2/aibridge/interceptions", params=params,
                           headers=api.auth("root"))
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == expected
    for bad in ("not-a-cursor", "W10", "WyJ4IiwgInkiXQ", "WzEsMl0"):
        r = api.client.get("/api/v2/aibridge/interceptions", params={"cursor": bad},
                           headers=api.auth("root"))
        assert r.status_code == 422 and r.json()["field"] == "cursor", (bad, r.text)
    for limit in (0, 201):
        r = api.client.get(f"/api/v2/aibridge/interceptions?limit={limit}",
                           headers=api.auth("root"))
        assert r.status_code == 422 and r.json()["field"] == "limit"


def test_interception_filters(api: Api) -> None:
    a = add_interception(api, user="mia", started_at=at(5), model="claude-opus-4",
                         prompt="refactor the parser")
    b = add_interception(api, user="bob", started_at=at(2), provider="openai", model="gpt-5",
                         client="Codex", status="upstream_error", prompt="write tests")
    c = add_interception(api, user="bob", started_at=at(1), model="claude-opus-4",
                         client="Cursor", prompt="explain the parser")

    def ids(**params: Any) -> list[str]:
        r = api.client.get("/api/v2/aibridge/interceptions", params=params,
                           headers=api.auth("root"))
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert ids(user="bob") == [str(c), str(b)]
    assert ids(provider="openai") == [str(b)]
    assert ids(model="claude-opus-4") == [str(c), str(a)]
    assert ids(client="Codex") == [str(b)]
    assert ids(status="upstream_error") == [str(b)]
    assert ids(q="parser") == [str(c), str(a)]
    assert ids(q="gpt") == [str(b)]
    assert ids(since=at(3).isoformat()) == [str(c), str(b)]
    assert ids(until=at(3).isoformat()) == [str(a)]
    assert ids(since=at(3).replace(tzinfo=None).isoformat()) == [str(c), str(b)]  # naive: UTC
    assert ids(user="nobody") == []
    r = api.client.get("/api/v2/aibridge/interceptions", params={"model": "a\x00b"},
                       headers=api.auth("root"))
    assert r.status_code == 422 and r.json()["field"] == "model"


def test_interception_detail(api: Api) -> None:
    iid = add_interception(api, user="mia", started_at=at(1), tokens=(1200, 340, 50, 7),
                           prompt="What's the weather in Paris?",
                           tools=[("get_weather", '{"location": "Paris"}')],
                           thoughts=["The user wants the weather."])
    r = api.client.get(f"/api/v2/aibridge/interceptions/{iid}", headers=api.auth("audrey"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["id"], d["initiator"], d["provider_name"], d["model"], d["status"]) == (
        str(iid), "mia", "anthropic", "claude-sonnet-4-5", "completed")
    assert (d["input_tokens"], d["output_tokens"], d["cache_read_input_tokens"],
            d["cache_write_input_tokens"]) == (1200, 340, 50, 7)
    assert d["prompt"] == "What's the weather in Paris?"
    assert [(t["tool"], t["input"]) for t in d["tools"]] == [("get_weather",
                                                             '{"location": "Paris"}')]
    assert [t["content"] for t in d["thoughts"]] == ["The user wants the weather."]
    assert [(u["input_tokens"], u["output_tokens"]) for u in d["token_usages"]] == [(1200, 340)]
    r = api.client.get(f"/api/v2/aibridge/interceptions/{uuid.uuid4()}", headers=api.auth("root"))
    assert r.status_code == 404
    r = api.client.get("/api/v2/aibridge/interceptions/not-a-uuid", headers=api.auth("root"))
    assert r.status_code == 422 and r.json()["field"] == "interception_id"


def test_usage_group_by(api: Api) -> None:
    add_interception(api, user="mia", started_at=at(2), model="m-a", tokens=(10, 1, 100, 2))
    add_interception(api, user="mia", started_at=at(1), model="m-b", tokens=(20, 2, 0, 0))
    add_interception(api, user="bob", started_at=at(1), model="m-a", client="Codex",
                     tokens=(30, 3, 0, 0))

    def report(group_by: str, **params: Any) -> list[tuple[str, int, int, int]]:
        r = api.client.get("/api/v2/aibridge/usage", params={"group_by": group_by, **params},
                           headers=api.auth("root"))
        assert r.status_code == 200, r.text
        assert r.json()["group_by"] == group_by
        return [(u["key"], u["interceptions"], u["input_tokens"], u["output_tokens"])
                for u in r.json()["items"]]

    assert report("user") == [("bob", 1, 30, 3), ("mia", 2, 30, 3)]
    assert report("model") == [("m-a", 2, 40, 4), ("m-b", 1, 20, 2)]
    assert report("client") == [("Claude Code", 2, 30, 3), ("Codex", 1, 30, 3)]
    assert report("provider") == [("anthropic", 3, 60, 6)]
    day1, day2 = at(2).date().isoformat(), at(1).date().isoformat()
    assert report("day") == [(day1, 1, 10, 1), (day2, 2, 50, 5)]
    assert report("model", user="mia") == [("m-a", 1, 10, 1), ("m-b", 1, 20, 2)]
    r = api.client.get("/api/v2/aibridge/usage?group_by=week", headers=api.auth("root"))
    assert r.status_code == 422 and r.json()["field"] == "group_by"


# --- audit -----------------------------------------------------------------------------------


def test_audit_rows_name_the_actor_and_hold_no_secrets(api: Api) -> None:
    create(api, api_keys=[KEY1])
    api.client.patch("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"),
                     json={"api_keys": [{"api_key": KEY2}], "base_url": "https://8.8.8.8"})
    api.client.delete("/api/v2/ai/providers/anthropic-corp", headers=api.auth("root"))
    with api.session() as s:
        rows = list(s.execute(select(AuditLog).where(AuditLog.actor == "root")  # type: ignore[arg-type]
                              .order_by(AuditLog.created_at)).scalars())  # type: ignore[arg-type]
    assert [r.action for r in rows] == ["provider.create", "provider.update", "provider.delete"]
    assert {(r.actor, r.actor_id, r.target_name) for r in rows} == {
        ("root", api.user_ids["root"], "anthropic-corp")}
    assert rows[1].details == {"base_url": "https://8.8.8.8",
                               "keys": {"kept": 0, "added": 1, "removed": 1}}
    dumped = orjson.dumps([r.details for r in rows])
    assert KEY1.encode() not in dumped and KEY2.encode() not in dumped

    r = api.client.get("/api/v2/audit", params={"actor": "root", "limit": 2},
                       headers=api.auth("root"))
    assert r.status_code == 200
    page = r.json()
    assert [i["action"] for i in page["items"]] == ["provider.delete", "provider.update"]
    assert page["items"][0]["actor_id"] == str(api.user_ids["root"])
    more = api.client.get("/api/v2/audit", params={"actor": "root", "limit": 2,
                                                   "cursor": page["next_cursor"]},
                          headers=api.auth("root")).json()
    assert [i["action"] for i in more["items"]] == ["provider.create"]
    assert more["next_cursor"] is None
    system = api.client.get("/api/v2/audit", params={"action": "user.create"},
                            headers=api.auth("root")).json()
    assert {i["actor"] for i in system["items"]} == {"system"}
    bad = api.client.get("/api/v2/audit?cursor=zzz", headers=api.auth("root"))
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"
