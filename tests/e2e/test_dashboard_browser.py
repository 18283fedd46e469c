"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real
gateway process: sign in, add a provider (a validation error first), edit it, rotate its key,
disable it, delete it, then the usage charts and an interception's detail. A screenshot of
each step goes to test-artifacts/screenshots/.

Never `playwright install`: the browser is /usr/bin/chromium from Debian (scripts/test-deps).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.recorded import wait_recorded
from tests.harness import REPO, GatewayProcess, start_gateway

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]
OLD_KEY = "sk-ant-browser-old-0123456789"
NEW_KEY = "sk-ant-browser-new-9876543210"


@pytest.fixture
def gw(tmp_path: Path, sqlite_url: str) -> Iterator[GatewayProcess]:
    gateway = start_gateway(tmp_path, sqlite_url)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run scripts/test-deps (installs Debian's "
                    "chromium) before the browser tests")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


class Steps:
    def __init__(self, page: Any) -> None:
        self.page = page
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(SHOTS / f"{self.count:02d}-{name}.png"), full_page=True)


def record_traffic(gw: GatewayProcess, fake: Any, token: str) -> str:
    """One intercepted request with thinking and a tool call; returns its interception id."""
    with anthropic.Anthropic(base_url=gw.url("anthropic"), api_key=token, max_retries=0) as c:
        raw = c.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[{"name": "get_weather", "description": "weather",
                    "input_schema": {"type": "object",
                                     "properties": {"location": {"type": "string"}}}}],
            messages=[{"role": "user", "content": "What's the weather? TOOL please"}],
        )
    iid = raw.headers["x-aibridge-interception-id"]
    wait_recorded(gw.admin.engine, iid)
    return iid


def sign_in(steps: Steps, gw: GatewayProcess, token: str) -> None:
    page = steps.page
    page.goto(f"{gw.base_url}/dashboard")
    assert page.url.startswith(f"{gw.base_url}/dashboard/login")
    steps.shot("sign-in")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{gw.base_url}/dashboard/providers")
    assert page.locator('tr[data-provider="anthropic"]').count() == 1
    steps.shot("providers")


def add_provider(steps: Steps, gw: GatewayProcess, fake: Any) -> None:
    page = steps.page
    page.click("text=Add provider")
    page.wait_for_url("**/dashboard/providers/_new")
    page.select_option("#type", "anthropic")
    page.fill("#name", "Anthropic_Corp")
    page.fill("#base_url", fake.base_url)
    page.fill("#api_key", OLD_KEY)
    page.click("button:has-text('Save provider')")
    error = page.locator("#err-name")
    assert "lowercase letters, digits and single hyphens" in error.inner_text()
    assert page.get_attribute("#name", "aria-invalid") == "true"
    assert page.input_value("#api_key") == ""  # the key is not rendered back
    steps.shot("validation-error")
    page.fill("#name", "anthropic-corp")
    page.fill("#api_key", OLD_KEY)
    page.click("button:has-text('Save provider')")
    page.wait_for_url("**/dashboard/providers/anthropic-corp?notice=created")
    assert "Provider added" in page.inner_text(".notice")
    steps.shot("created")


def edit_rotate_disable(steps: Steps, gw: GatewayProcess, fake: Any, token: str) -> None:
    page = steps.page
    page.fill("#display_name", "Anthropic (corp)")
    page.fill("#base_url", fake.base_url.replace("127.0.0.1", "localhost"))
    page.click("button:has-text('Save changes')")
    page.wait_for_url("**/dashboard/providers/anthropic-corp?notice=updated")
    assert page.input_value("#base_url") == fake.base_url.replace("127.0.0.1", "localhost")
    assert page.inner_text("h1") == "Anthropic (corp)"
    steps.shot("edited")

    old_masked = page.locator("#keys code.key").inner_text()
    page.fill("#new_key", NEW_KEY)
    page.check("#keys input[name=remove_key]")
    page.click("button:has-text('Save changes')")
    page.wait_for_url("**/dashboard/providers/anthropic-corp?notice=updated")
    masked = page.locator("#keys code.key").all_inner_texts()
    assert masked == ["sk-a...3210"] and old_masked == "sk-a...6789"
    assert NEW_KEY not in page.content() and OLD_KEY not in page.content()
    steps.shot("key-rotated")
    r = httpx.post(gw.url("anthropic-corp", "/v1/messages"), headers={"x-api-key": token},
                   json={"model": "m", "max_tokens": 5, "messages": [{"role": "user",
                                                                     "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert fake.requests[-1].header("x-api-key") == NEW_KEY

    page.uncheck("#enabled")
    page.click("button:has-text('Save changes')")
    page.wait_for_url("**/dashboard/providers/anthropic-corp?notice=updated")
    assert "Disabled" in page.inner_text("main")
    steps.shot("disabled")
    r = httpx.post(gw.url("anthropic-corp", "/v1/messages"), headers={"x-api-key": token},
                   json={"model": "m", "max_tokens": 5, "messages": []})
    assert r.status_code == 403 and "disabled by an administrator" in r.text


def delete_provider(steps: Steps, gw: GatewayProcess) -> None:
    page = steps.page
    page.click("text=Delete…")
    page.wait_for_url("**/dashboard/providers/anthropic-corp/delete")
    assert "Delete provider “anthropic-corp”?" in page.inner_text("h1")
    steps.shot("delete-confirmation")
    page.click("button:has-text('Delete anthropic-corp')")
    page.wait_for_url("**/dashboard/providers?notice=deleted")
    assert page.locator('tr[data-provider="anthropic-corp"]').count() == 0
    assert page.locator('tr[data-provider="anthropic"]').count() == 1
    steps.shot("deleted")
    r = httpx.post(gw.url("anthropic-corp", "/v1/messages"), headers={"x-api-key": "x"})
    assert r.status_code in (401, 404)


def usage_and_detail(steps: Steps, gw: GatewayProcess, iid: str) -> None:
    page = steps.page
    page.click("nav >> text=Usage")
    page.wait_for_url("**/dashboard/usage")
    by_model = page.locator("#chart-by-model svg")
    by_user = page.locator("#chart-by-user svg")
    assert by_model.count() == 1 and by_user.count() == 1
    assert by_model.locator("rect[fill='#0072B2']").count() >= 2  # a bar and its legend swatch
    assert "claude-sonnet-4-5" in by_model.inner_html()
    assert "alice" in by_user.inner_html()
    assert "input + output tokens" in by_model.inner_html()
    assert page.locator("#top-users").inner_text().count("alice") == 1
    steps.shot("usage")

    page.click("nav >> text=Interceptions")
    page.fill("#f-q", "weather")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r".*/dashboard/interceptions\?q=weather.*"))
    rows = page.locator("#interceptions tbody tr")
    assert rows.count() == 1 and "What's the weather? TOOL please" in rows.inner_text()
    steps.shot("interceptions")
    rows.locator("a").first.click()
    page.wait_for_url(f"**/dashboard/interceptions/{iid}")
    assert page.inner_text("#prompt") == "What's the weather? TOOL please"
    assert "get_weather" in page.inner_text("#tools") and "Paris" in page.inner_text("#tools")
    assert page.locator("#thoughts li").count() >= 1
    assert int(page.inner_text("#in-tokens").replace(",", "")) > 0
    steps.shot("interception-detail")


def test_dashboard_in_a_browser(gw: GatewayProcess, fake: Any, browser_page: Any) -> None:
    spec = httpx.get(f"{gw.base_url}/api/v2/openapi.json")
    assert spec.status_code == 200, (
        "the gateway does not serve the admin app: register addons.admin.Admin in "
        f"addons/__init__.py default_addons() (got {spec.status_code})")
    gw.admin.add_provider("anthropic", "anthropic", fake.base_url,
                          ["sk-ant-existing-0123456789"])
    gw.admin.add_user("root", "admin")
    gw.admin.add_user("alice")
    root, alice = gw.admin.token("root"), gw.admin.token("alice")
    gw.sync()
    iid = record_traffic(gw, fake, alice)

    steps = Steps(browser_page)
    sign_in(steps, gw, root)
    add_provider(steps, gw, fake)
    edit_rotate_disable(steps, gw, fake, alice)
    delete_provider(steps, gw)
    usage_and_detail(steps, gw, iid)

    browser_page.click("button:has-text('Sign out')")
    browser_page.wait_for_url("**/dashboard/login?notice=signed-out")
    browser_page.goto(f"{gw.base_url}/dashboard/providers")
    assert "/dashboard/login" in browser_page.url
    assert steps.count == 12
    for secret in (OLD_KEY, NEW_KEY, root, alice):
        assert secret not in browser_page.content()
