"""Signing in to the dashboard, and /docs offline: a real browser, a real gateway."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import TOKEN, Platform


async def test_a_page_asks_for_the_token_and_a_wrong_one_is_refused(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    await page.goto(dashboard.url + "/ui/invocations")
    await expect(page).to_have_url(f"{dashboard.url}/ui/login?next=%2Fui%2Finvocations")
    await page.fill("#token", "not-the-token")
    await page.click("form[action='/ui/login'] button[type=submit]")
    await expect(page.get_by_role("alert")).to_contain_text("not this gateway's token")
    await shot("refused")
    assert TOKEN not in page.url


async def test_signing_in_keeps_the_session_in_a_cookie_the_page_cannot_read(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    await sign_in(page, dashboard)
    await expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()
    await shot("signed-in")
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "faasflow_session")
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    assert TOKEN not in session["value"]
    assert await page.evaluate("document.cookie") == ""
    await page.click("header form.logout button")
    await expect(page).to_have_url(f"{dashboard.url}/ui/login")
    await page.goto(dashboard.url + "/ui/")
    await expect(page).to_have_url(f"{dashboard.url}/ui/login?next=%2Fui%2F")


def test_another_sites_form_cannot_act_with_a_session(dashboard: Platform) -> None:
    with httpx.Client(base_url=dashboard.url) as browser_like:
        signed = browser_like.post("/ui/login", data={"token": TOKEN},
                                   headers={"Origin": dashboard.url})
        assert signed.status_code == 303
        forged = browser_like.post("/ui/logout", headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
        no_origin = browser_like.post("/ui/logout")
        assert no_origin.status_code == 403
        assert browser_like.get("/ui/", headers={"Accept": "text/html"}).status_code == 200


def test_signing_in_never_sends_you_to_another_site(dashboard: Platform) -> None:
    with httpx.Client(base_url=dashboard.url) as browser_like:
        for target in ("//evil.example/ui", "https://evil.example/ui/", "/elsewhere"):
            answer = browser_like.post("/ui/login", data={"token": TOKEN, "next": target},
                                       headers={"Origin": dashboard.url})
            assert answer.headers["location"] == "/ui/", target


async def test_docs_render_their_operations_with_no_way_out(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(dashboard.url)
            else outside.append(r.url))
    await page.goto(dashboard.url + "/docs")
    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() > 50
    await expect(page.locator(".opblock-summary-path", has_text="/v1/functions/{name}").first
           ).to_be_visible()
    await shot("docs")
    assert outside == []
