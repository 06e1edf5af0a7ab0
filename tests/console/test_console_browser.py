"""The web console in a real browser (Debian's headless Chromium, driven by Playwright):
what a person does with it, on an installation made by real ``syncd reconcile`` runs.

These tests also take the README's screenshots. A test run writes them to a temporary
folder and changes no tracked file; ``SYNCD_SCREENSHOTS=docs`` (the README's command that
regenerates ``docs/``) writes them over ``docs/console-*.png``, so the pictures always
show what the console really looks like.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from syncd.ledger.browse import LedgerReader
from syncd.ledger.models import File

from .browser import CHROMIUM, CHROMIUM_ARGS
from .conftest import KEPT, PASSWORD, PICTURES, World

#: where the screenshots go: ``$SYNCD_SCREENSHOTS`` (relative to the repository), else a
#: temporary folder of this run
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / os.environ["SYNCD_SCREENSHOTS"]
    if os.environ.get("SYNCD_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / f"syncd-screenshots-{os.getpid()}"
)
#: what the screenshots show in place of the test's temporary folder
SHOWN_ROOT = "/srv/images"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"
)

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Page, world: World) -> None:
    page.goto(f"{world.url}/")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{world.url}/")


def screenshot(page: Page, world: World, name: str) -> None:
    """Save the page as ``<SCREENSHOTS>/<name>.png``, the test's temporary root shown as SHOWN_ROOT."""
    page.evaluate(
        """([tmp, shown]) => {
            const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            while (walk.nextNode()) walk.currentNode.nodeValue = walk.currentNode.nodeValue.split(tmp).join(shown);
        }""",
        [str(world.site.tmp_path), SHOWN_ROOT],
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_login_then_the_overview_shows_the_numbers_of_syncd_status(
    page: Page, world: World
) -> None:
    page.goto(f"{world.url}/failures")
    expect(page.locator("#password")).to_be_visible()  # 401: the login form, nothing else
    screenshot(page, world, "console-login")
    page.fill("#password", "a wrong guess")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("wrong password")
    log_in(page, world)
    status = json.loads(world.site.syncd("status", "--json").out)
    for lib in status["libraries"]:
        row = page.locator(f'tr[data-library="{lib["name"]}"]')
        for key in ("files", "synced", "pending", "failed", "held_deletes"):
            expect(row.locator(f'[data-key="{key}"]')).to_have_text(str(lib[key]))
    assert status["libraries"][0]["held_deletes"] == PICTURES - KEPT
    # the chart is drawn by the page's own script: one bar a minute for the last hour
    expect(page.locator("#chart svg rect.bar")).to_have_count(60)
    # and the numbers refresh by themselves
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=10_000)
    screenshot(page, world, "console-overview")


def test_a_failed_file_is_retried_from_the_failures_page(page: Page, world: World) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/failures")
    row = page.locator("tr[data-file]", has_text="broken.jpg")
    expect(row.locator(".reason")).not_to_be_empty()
    screenshot(page, world, "console-failures")
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash")).to_contain_text("1 refused files to read again")
    # recorded in the ledger: the next scan reads the file again
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            mtime = session.scalars(
                select(File.mtime_ns).where(File.relpath == "broken.jpg")
            ).one()
    finally:
        reader.close()
    assert mtime == -1


def test_held_deletes_are_released_after_a_confirmation(page: Page, world: World) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/held")
    held = page.locator('section.held[data-library="photos"]')
    expect(held.locator(".count")).to_have_text(str(PICTURES - KEPT))
    screenshot(page, world, "console-held")
    held.get_by_role("link", name=re.compile("Release")).click()
    expect(page.locator("h1")).to_contain_text("Release held deletes of library photos")
    screenshot(page, world, "console-held-confirm")
    page.click("#confirm-release")
    expect(page.locator(".flash")).to_contain_text(f"{PICTURES - KEPT} held deletes let go")
    expect(page.locator("#none-held")).to_be_visible()
    # the next sync pass deletes them from the gallery
    assert len(world.site.items()) == PICTURES
    world.site.syncd("reconcile")
    assert len(world.site.items()) == KEPT
    status = json.loads(world.site.syncd("status", "--json").out)
    assert status["libraries"][0]["held_deletes"] == 0


def test_an_image_chosen_on_the_search_page_shows_its_file_thumbnail_and_path(
    page: Page, world: World
) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/search")
    wanted = world.site.root / "pics" / "p02.jpg"
    page.set_input_files("#image", str(wanted))
    expect(page.locator("#hits")).to_have_attribute("data-done", "ok", timeout=15_000)
    first = page.locator("#hits li.hit").first
    expect(first.locator(".path")).to_have_text(str(wanted))
    thumb = first.locator("img")
    expect(thumb).to_have_attribute("src", re.compile(r"^/thumb/\d+$"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    screenshot(page, world, "console-search")
