"""The web console: page and /api/status answer times on a ledger of 1M files, and search
(image chosen -> hits shown, measured in a real browser) on the embedded gallery.

Targets: every page answers in <= 200 ms with 1M ledger rows; search page, image
chosen -> hits shown <= 1 s. The big ledger is built directly with bulk inserts through
the ledger's models (a realistic mix: nearly all synced, some refused, failed, pending and
held); a page's figure is the median of its answer times after one warm-up request.
The search installation is made by a real ``syncd reconcile`` on the embedded gallery.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import Result, bench_parser, report

PAGE_TARGET_MS = 200.0
SEARCH_TARGET_MS = 1000.0
#: Debian's Chromium (as the console's browser tests launch it)
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "bench-console-password"


def write_config(folder: Path, libraries: list[str], endpoint: str = "embedded") -> Path:
    """A config with ``libraries`` (same_hq) under ``folder`` and a console password."""
    (folder / "console-password").write_text(PASSWORD + "\n", encoding="utf-8")
    lines = [
        "[api]",
        f'endpoint = "{endpoint}"',
        "qps = 1000.0",
        "[ledger]",
        'path = "./state/ledger.db"',
        "[watch]",
        "settle = 0.0",
        "[console]",
        'listen = "127.0.0.1:0"',
        'password_file = "./console-password"',
    ]
    for name in libraries:
        (folder / name).mkdir(exist_ok=True)
        lines += ["[[library]]", f'name = "{name}"', f'root = "./{name}"', 'gallery = "same_hq"']
    config = folder / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def build_big_ledger(path: Path, files: int, libraries: list[str]) -> None:
    """``files`` file rows (with their contents and items) spread over ``libraries``:
    per 1000 files, 5 refused, 1 whose call failed, 2 pending, 2 held deletes."""
    from sqlalchemy import insert

    from syncd.ledger.models import Content, File, Item, Library
    from syncd.ledger.schema import open_ledger

    ledger = open_ledger(path)
    chunk = 50_000
    now = time.time()
    try:
        with ledger.transaction() as session:
            session.execute(
                insert(Library),
                [
                    {"id": n + 1, "name": name, "gallery": "same_hq", "root": f"/srv/{name}"}
                    for n, name in enumerate(libraries)
                ],
            )
        for start in range(0, files, chunk):
            items, contents, rows = [], [], []
            for i in range(start, min(files, start + chunk)):
                kind = i % 1000
                content = f"{i:064x}"
                state, verdict, file_state = "synced", "ok", "live"
                if kind < 5:
                    verdict = "rejected"
                elif kind == 5:
                    state = "failed"
                elif kind < 8:
                    state = "pending"
                elif kind < 10:
                    file_state = "held"
                rows.append(
                    {
                        "id": i + 1,
                        "library_id": i % len(libraries) + 1,
                        "relpath": f"d{i // 1000:04d}/img{i:07d}.jpg",
                        "size": 40_000 + i % 997,
                        "mtime_ns": 1_700_000_000_000_000_000 + i,
                        "inode": 10_000 + i,
                        "dev": 2049,
                        "content_hash": None if verdict != "ok" else content,
                        "verdict": verdict,
                        "verdict_reason": "not an image" if verdict != "ok" else None,
                        "state": file_state,
                        "first_seen_at": now - 86_400,
                        "vanished_at": now - 60 if file_state == "held" else None,
                    }
                )
                if verdict != "ok":
                    continue
                synced = state == "synced"
                items.append(
                    {
                        "id": i + 1,
                        "gallery": "same_hq",
                        "cont_sign": f"{i},{i * 7919 % 1_000_003}" if synced else None,
                        "have_brief": "{}" if synced else None,
                        "want_present": True,
                        "want_brief": "{}",
                        "want_tags": "",
                        "source_file_id": i + 1,
                        "op": None if synced else "add",
                        "state": state,
                        "attempts": 1 if state == "failed" else 0,
                        "next_attempt_at": 0.0,
                        "error_code": 216201 if state == "failed" else None,
                        "error_message": "image format error" if state == "failed" else None,
                        "updated_at": now,
                    }
                )
                contents.append({"gallery": "same_hq", "content_hash": content, "item_id": i + 1})
            with ledger.transaction() as session:
                session.execute(insert(File), rows)
                session.execute(insert(Item), items)
                session.execute(insert(Content), contents)
    finally:
        ledger.close()


def page_times(url: str, paths: list[str], runs: int) -> list[Result]:
    """Median answer time of each page, after one warm-up request."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {PASSWORD}"
    results = []
    for path in paths:
        session.get(f"{url}{path}").raise_for_status()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            answer = session.get(f"{url}{path}")
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        results.append(
            Result.at_most(f"page {path} (1M rows)", statistics.median(times), "ms", PAGE_TARGET_MS)
        )
    return results


def search_times(folder: Path, pictures: int, runs: int) -> Result:
    """Image chosen on the search page -> hits (with thumbnail) shown, in Chromium."""
    from click.testing import CliRunner
    from playwright.sync_api import sync_playwright

    from devkit.browser import CHROMIUM_ARGS
    from devkit.imagegen import make_image
    from syncd.cli import cli
    from syncd.config import load_config
    from syncd.console.server import ConsoleServer

    config_path = write_config(folder, ["photos"])
    for seed in range(pictures):
        path = folder / "photos" / f"d{seed % 10}" / f"p{seed:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_image(seed, size=(160, 120)))
    outcome = CliRunner().invoke(cli, ["reconcile", "-c", str(config_path)])
    if outcome.exit_code != 0:
        raise SystemExit(f"reconcile failed ({outcome.exit_code}): {outcome.output} {outcome.exception!r}")
    config = load_config(config_path)
    times = []
    with ConsoleServer(config) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page()
        page.goto(f"{server.url}/login")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        page.goto(f"{server.url}/search")
        for run in range(runs + 1):
            wanted = folder / "photos" / f"d{run % 10}" / f"p{run:04d}.jpg"
            started = time.perf_counter()
            page.set_input_files("#image", str(wanted))
            page.wait_for_selector("#hits[data-done=ok] tr.hit img")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#hits img')].every("
                "i => i.complete && i.naturalWidth > 0)"
            )
            elapsed = (time.perf_counter() - started) * 1000
            if run:  # the first one warms the browser and the console up
                times.append(elapsed)
            if str(wanted) not in page.inner_text("#hits"):
                raise SystemExit(f"search did not find {wanted}")
        browser.close()
    return Result.at_most(
        f"search: image chosen -> hits shown ({pictures} items, embedded gallery)",
        statistics.median(times),
        "ms",
        SEARCH_TARGET_MS,
    )


def main() -> None:
    args = bench_parser(__doc__).parse_args()
    files = 100_000 if args.quick else 1_000_000
    runs = 5 if args.quick else 9
    from syncd.config import load_config
    from syncd.console.server import ConsoleServer
    from syncd.ledger.calls import record_calls
    from syncd.ledger.schema import open_ledger

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="syncd-bench-console-") as tmp:
        big = Path(tmp) / "big"
        big.mkdir()
        libraries = ["catalog", "scans"]
        config_path = write_config(big, libraries)
        config = load_config(config_path)
        started = time.perf_counter()
        build_big_ledger(config.ledger.path, files, libraries)
        ledger = open_ledger(config.ledger)
        with ledger.transaction() as session:
            minute = int(time.time() // 60)
            for back in range(60):
                record_calls(session, "bench-host", minute - back, 300 + back)
        ledger.close()
        print(f"ledger of {files} files built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with ConsoleServer(config) as server:
            results += page_times(
                server.url,
                [
                    "/",
                    "/api/status",
                    "/api/calls",
                    "/failures",
                    "/held",
                    "/held/confirm?library=catalog",
                    "/search",
                ],
                runs,
            )
        if CHROMIUM.exists():
            search = Path(tmp) / "search"
            search.mkdir()
            results.append(search_times(search, 50 if args.quick else 300, runs))
        else:
            print("no /usr/bin/chromium: the search figure is not measured", file=sys.stderr)
    if args.quick:
        results = [
            Result.at_most(r.name.replace("1M rows", f"{files // 1000}k rows"), r.figure, r.unit, r.target)
            for r in results
        ]
    report(results)


if __name__ == "__main__":
    main()
