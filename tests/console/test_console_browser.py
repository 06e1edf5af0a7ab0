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

from devkit.browser import CHROMIUM, CHROMIUM_ARGS
from syncd.ledger.browse import LedgerReader
from syncd.ledger.models import File

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


def screenshot(page: Page, world: World, name: str, full_page: bool = True) -> None:
    """Save the page (or what the window shows of it) as ``<SCREENSHOTS>/<name>.png``, the
    test's temporary root shown as SHOWN_ROOT."""
    page.evaluate(
        """([tmp, shown]) => {
            const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            while (walk.nextNode()) walk.currentNode.nodeValue = walk.currentNode.nodeValue.split(tmp).join(shown);
        }""",
        [str(world.site.tmp_path), SHOWN_ROOT],
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_login_then_the_overview_shows_the_numbers_of_syncd_status(
    page: Page, world: World
) -> None:
    page.goto(f"{world.url}/failures")
    expect(page.locator("#password")).to_be_visible()  # 401: the login form, nothing else
    screenshot(page, world, "console-login")
    page.fill("#password", "a wrong guess")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("wrong password")
    polled: list[str] = []
    page.on("request", lambda request: polled.append(request.url))
    log_in(page, world)
    status = json.loads(world.site.syncd("status", "--json").out)
    for lib in status["libraries"]:
        row = page.locator(f'tr[data-library="{lib["name"]}"]')
        for key in ("files", "items", "synced", "pending", "failed", "held_deletes"):
            expect(row.locator(f'[data-key="{key}"]')).to_have_text(str(lib[key]))
        # nothing is queued: the held deletes wait for a person, the failed file for a retry
        assert lib["pending"] == 0
        expect(row.locator('[data-key="state"]')).to_have_text("up to date")
    assert status["libraries"][0]["held_deletes"] == PICTURES - KEPT
    # the chart is drawn by the page's own script: one bar a minute for the last hour
    expect(page.locator("#chart svg rect.bar")).to_have_count(60)
    # and the numbers refresh by themselves
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=10_000)
    # the account's rate, as the server wrote it and as the next refresh writes it again
    rate = f"now {status['rate']['calls_per_second']:g} calls/s, all day"
    expect(page.locator("#rate-text")).to_have_text(rate)
    page.evaluate("document.getElementById('rate-text').textContent = ''")
    expect(page.locator("#rate-text")).to_have_text(rate, timeout=10_000)
    # the last activity is polled without the list of calls
    activity = [url for url in polled if "/api/activity" in url]
    assert activity and all(url.endswith("/api/activity?limit=0") for url in activity), activity
    screenshot(page, world, "console-overview")


def test_a_failed_file_is_retried_from_the_failures_page(page: Page, world: World) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/failures")
    row = page.locator("tr[data-file]", has_text="broken.jpg")
    expect(row.locator(".reason")).not_to_be_empty()
    screenshot(page, world, "console-failures")
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash")).to_contain_text("1 refused file to read again")
    expect(page.locator(".flash")).to_contain_text("0 failed items")
    # recorded in the ledger: the next scan reads the file again
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            mtime = session.scalars(select(File.mtime_ns).where(File.relpath == "broken.jpg")).one()
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
    first = page.locator("#hits tr.hit").first
    expect(first.locator(".path")).to_have_text(str(wanted))
    thumb = first.locator("img")
    expect(thumb).to_have_attribute("src", re.compile(r"^/thumb/\d+$"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    expect(first.locator(".library")).to_have_text("photos")
    # the image searched with is shown beside the drop zone
    preview = page.locator("#query-preview")
    expect(preview).to_be_visible()
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=preview.element_handle()
    )
    screenshot(page, world, "console-search")


#: the one absolute time format of every page, server-rendered or written by the script
ABSOLUTE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def test_times_read_the_same_before_and_after_the_page_refreshes(page: Page, world: World) -> None:
    log_in(page, world)
    # what the server rendered, before the page's script touched it
    served = page.request.get(f"{world.url}/").text()
    rendered = re.findall(r"<time>([^<]*)</time>", served)
    assert rendered and all(ABSOLUTE.match(text) for text in rendered), rendered
    host_seen = re.search(r'<tbody id="hosts-rows">.*?<time>([^<]*)</time>', served, re.S)
    assert host_seen is not None
    page.goto(f"{world.url}/")
    expect(page.locator("#updated")).to_contain_text("Updated", timeout=10_000)
    # after the refresh: the same text for the same instant, with its zone
    expect(page.locator("#hosts-rows time").first).to_have_text(host_seen.group(1))
    for text in page.locator("main time").all_inner_texts():
        assert ABSOLUTE.match(text), text
    expect(page.locator("#as-of time")).to_have_text(ABSOLUTE)
    expect(page.locator("#as-of .ago")).to_have_text(re.compile(r"^\((just now|\d+ s ago)\)$"))
    expect(page.locator("#updated")).to_contain_text(" UTC")


def test_plurals_say_one_hit_and_one_held_delete(page: Page, world: World) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/search")
    page.fill("#top", "1")
    page.set_input_files("#image", str(world.site.root / "pics" / "p01.jpg"))
    expect(page.locator("#hits")).to_have_attribute("data-done", "ok", timeout=15_000)
    expect(page.locator("#search-state")).to_have_text(re.compile(r"^1 hit \(\d+ ms\)$"))
    page.goto(f"{world.url}/held")
    expect(page.locator("section.held h2")).to_have_text(
        f"Library photos: {PICTURES - KEPT} held deletes"
    )


def test_a_search_with_a_file_that_is_no_image_shows_one_error_in_the_error_style(
    page: Page, world: World, tmp_path: Path
) -> None:
    log_in(page, world)
    page.goto(f"{world.url}/search")
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("a shopping list, not a picture", encoding="utf-8")
    page.set_input_files("#image", str(text_file))
    expect(page.locator("#hits")).to_have_attribute("data-done", "error", timeout=15_000)
    state = page.locator("#search-state")
    expect(state).to_have_class("error")
    expect(state).to_have_attribute("role", "alert")
    text = state.inner_text()
    assert text.count("not an image") == 1, text
    muted = page.evaluate("getComputedStyle(document.querySelector('p.muted')).color")
    assert state.evaluate("node => getComputedStyle(node).color") not in (muted, "")


def test_the_activity_page_lists_a_call_after_a_sync_and_filters_by_outcome(
    page: Page, world: World
) -> None:
    world.site.write("pics/new-arrival.jpg", 42)
    world.site.syncd("reconcile")  # in this process: the console sees its workers' calls
    log_in(page, world)
    # the overview's last activity of the library is that call's time
    expect(page.locator('tr[data-library="photos"] [data-key="last_activity"] time')).to_have_text(
        ABSOLUTE
    )
    page.click("nav >> text=Activity")
    row = page.locator("#activity tr.call", has_text="pics/new-arrival.jpg")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("photos")
    expect(row).to_contain_text("add")
    expect(row).to_contain_text("same_hq")
    expect(row.locator(".outcome")).to_have_text("added")
    expect(row.locator("time")).to_have_text(ABSOLUTE)
    screenshot(
        page, world, "console-activity", full_page=False
    )  # the ring holds earlier tests' calls
    page.select_option("#outcome", "failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"outcome=failed"))
    expect(page.locator("#activity tr.call", has_text="pics/new-arrival.jpg")).to_have_count(0)
    for outcome in page.locator("#activity tr.call").evaluate_all(
        "rows => rows.map(r => r.dataset.outcome)"
    ):
        assert outcome == "failed"
    page.goto(f"{world.url}/activity?outcome=added&library=photos")
    expect(page.locator("#activity tr.call", has_text="pics/new-arrival.jpg")).to_have_count(1)


def test_the_overview_shows_the_scheduled_rate_and_its_next_change(
    page: Page, scheduled_world: World
) -> None:
    log_in(page, scheduled_world)
    served = page.locator("#rate-text").inner_text()
    assert re.fullmatch(r"now (3|10) calls/s, (10|3) from (12|00):00 \(UTC\+8\)", served), served
    # the page's script words it as the server does, from /api/status's rate
    page.evaluate("document.getElementById('rate-text').textContent = ''")
    expect(page.locator("#rate-text")).to_have_text(
        re.compile(r"^now (3|10) calls/s, (10|3) from (12|00):00 \(UTC\+8\)$"), timeout=10_000
    )
    rate = page.request.get(f"{scheduled_world.url}/api/status").json()["rate"]
    upcoming = rate["next"]
    expect(page.locator("#rate-text")).to_have_text(
        f"now {rate['calls_per_second']:g} calls/s, "
        f"{upcoming['calls_per_second']:g} from {upcoming['at_utc8']} (UTC+8)"
    )


@pytest.mark.parametrize("path", ["/", "/failures", "/held", "/search", "/activity"])
def test_at_phone_width_no_page_scrolls_sideways(browser: Browser, world: World, path: str) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 800})
    try:
        page = context.new_page()
        log_in(page, world)
        page.goto(f"{world.url}{path}")
        if path == "/search":
            page.set_input_files("#image", str(world.site.root / "pics" / "p02.jpg"))
            expect(page.locator("#hits")).to_have_attribute("data-done", "ok", timeout=15_000)
        if path == "/":
            expect(page.locator("#updated")).to_contain_text("Updated", timeout=10_000)
            screenshot(page, world, "console-overview-phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, (path, width)
    finally:
        context.close()
