"""Deploys the Functions page refuses show why beside the form, and deleting a function
someone else deleted already says so: a real browser, a real gateway."""

from __future__ import annotations

import uuid

from playwright.async_api import Dialog, Page, expect

from tests.integration.browser.conftest import Shots, sign_in
from tests.integration.platform import Platform

ECHO = "def main(event, context):\n    return event\n"


async def test_a_deploy_the_gateway_refuses_shows_the_reason(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    name = f"broken-{uuid.uuid4().hex[:6]}"
    await sign_in(page, dashboard, "/ui/functions")
    await page.fill("#name", name)
    await page.check("input[name=kind][value=image]")
    await page.fill("#image", "faasflow/never-built:nope")
    await page.click("#deploy-form button[type=submit]")
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("is not present on this Docker Engine")
    await expect(page.locator("#name")).to_have_value(name)  # the form keeps what was typed
    await shot("image-refused")

    await page.check("input[name=kind][value=code]")
    await page.fill("#memory_mb", "1")
    await page.fill("#timeout_s", "soon")
    await page.click("#deploy-form button[type=submit]")
    await expect(page.locator("span.error[data-field=memory_mb]")).to_contain_text("6")
    await expect(page.locator("span.error[data-field=timeout_s]")).to_be_visible()
    await shot("input-refused")
    assert dashboard.api.get(f"/v1/functions/{name}").status_code == 404


async def test_deleting_a_function_deleted_elsewhere_says_it_was_not_there(
        page: Page, dashboard: Platform, shot: Shots) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    dashboard.deploy(name, None, runtime="python", code=ECHO)
    await sign_in(page, dashboard, f"/ui/functions/{name}")
    assert dashboard.api.delete(f"/v1/functions/{name}").status_code == 204

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.once("dialog", accept)
    await page.click("form[data-confirm] button.danger")
    await expect(page.get_by_role("status")).to_contain_text(
        f"function {name} was not there")
    await shot("gone")
