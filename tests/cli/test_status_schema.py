"""`syncd status --json` (and the console's /api/status, the same document) holds exactly
what docs/status.schema.json documents: real output of a real installation is validated
against the schema, and the schema forbids keys it does not name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from e2e.site import STATUS_KEPT, STATUS_PICTURES, Site, status_site
from jsonschema import Draft202012Validator
from sqlalchemy import select

from syncd.api.baidu.codes import error_for
from syncd.config import load_config
from syncd.console.server import ConsoleServer
from syncd.gallery.server import GalleryServer
from syncd.health import RootFacts, ServiceStateFile, WatchState, service_state_path
from syncd.ledger.conditions import (
    LibraryConditions,
    MissingMount,
    RootCondition,
    UnreadableFolder,
    conditions_by_library,
    store_conditions,
)
from syncd.ledger.models import Library
from syncd.ledger.settings import GALLERY_STOP_PREFIX, PAUSE_KEY, put_setting
from syncd.pauses import pause_for_quota, stop_for_setup_error

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "status.schema.json"
SYNCD = str(Path(sys.executable).with_name("syncd"))


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(document: dict[str, Any]) -> None:
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
        for e in validator().iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


def syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``syncd`` command, in a process of its own."""
    return subprocess.run(
        [SYNCD, *args, "-c", str(config)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def site(tmp_path: Path, gallery_server: GalleryServer) -> Site:
    """Two libraries synced by real reconciles: a refused file, held deletes, a scan that
    kept files it could not see, a pause, a stopped gallery, calls of two hosts, a daily
    budget, a rate timetable."""
    site = status_site(tmp_path, gallery_server, daily_budget=5000, qps_schedule="08:00,3 19:00,10")
    now = datetime.now(UTC)
    ledger = site.open_ledger(create=False)
    try:
        with ledger.transaction() as session:
            assert set(conditions_by_library(session)) == {"photos", "shop"}
            shop_id = session.scalar(select(Library.id).where(Library.name == "shop"))
            store_conditions(
                session,
                shop_id,
                LibraryConditions(
                    "shop",
                    root_device=64768,
                    mounts=(("archive", 64769),),
                    root=RootCondition(
                        "device_changed", "root moved to another device", 1, 64768, 64770
                    ),
                    missing_mounts=(MissingMount("archive", 64769, "not_mounted", 4),),
                    unreadable=(UnreadableFolder("locked", "Permission denied", 2),),
                ),
                time.time(),
            )
            put_setting(session, PAUSE_KEY, pause_for_quota(error_for(17), now).to_json(), 0.0)
            stop = stop_for_setup_error("same_hq", error_for(216017), now)
            put_setting(session, GALLERY_STOP_PREFIX + "same_hq", stop.to_json(), 0.0)
    finally:
        ledger.close()
    return site


@pytest.fixture
def watched(site: Site) -> Iterator[ServiceStateFile]:
    """What a running `syncd run` publishes: photos watched by inotify, shop polled."""
    state = ServiceStateFile(service_state_path(load_config(site.config)), pid=os.getpid())
    state.publish(
        {
            "photos": WatchState("inotify", "", since=time.time()),
            "shop": WatchState("polling", "inotify watch limit reached", True, 30.0),
        },
        {"photos": RootFacts(str(site.root)), "shop": RootFacts(str(site.tmp_path / "shop"))},
    )
    yield state
    state.remove()


def test_status_json_holds_exactly_what_the_schema_documents(
    site: Site, watched: ServiceStateFile
) -> None:
    result = syncd(site.config, "status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert_valid(document)
    # the installation shows every part of the document the schema describes
    assert document["paused"]["code"] == 17 and document["fatal"]["same_hq"]["code"] == 216017
    assert document["hosts"] and document["hosts"][0]["libraries"] == ["photos", "shop"]
    assert document["budget"]["limit"] == 5000 and document["rate"]["scheduled"] is True
    assert document["conditions"]["shop"]["unreadable"][0]["path"] == "locked"
    assert [lib["watch"] for lib in document["health"]["libraries"]] == ["inotify", "polling"]
    assert document["libraries"][0]["held_deletes"] == STATUS_PICTURES - STATUS_KEPT
    assert "failed" not in document


def test_status_json_failed_lists_the_failures_the_schema_documents(site: Site) -> None:
    result = syncd(site.config, "status", "--json", "--failed")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert_valid(document)
    assert [(f["library"], f["path"]) for f in document["failed"]] == [("photos", "broken.jpg")]


def test_the_consoles_api_status_holds_what_the_schema_documents(site: Site) -> None:
    with ConsoleServer(load_config(site.config)) as server:
        answer = requests.get(f"{server.url}/api/status", timeout=30)
    assert answer.status_code == 200
    assert_valid(answer.json())
    assert answer.json()["libraries"][0]["failed"] == 1 and "failed" not in answer.json()


def test_a_key_the_schema_does_not_document_fails(site: Site) -> None:
    document = json.loads(syncd(site.config, "status", "--json").stdout)
    document["libraries"][0]["surprise"] = 1
    assert list(validator().iter_errors(document))
    document = json.loads(syncd(site.config, "status", "--json").stdout)
    document["surprise"] = 1
    assert list(validator().iter_errors(document))


def test_a_status_before_any_ledger_holds_what_the_schema_documents(
    tmp_path: Path, gallery_server: GalleryServer
) -> None:
    site = Site(tmp_path, gallery_server)
    result = syncd(site.config, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert_valid(json.loads(result.stdout))


def test_the_help_and_the_readme_name_every_top_level_key() -> None:
    keys = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["properties"]
    shown = subprocess.run([SYNCD, "status", "--help"], capture_output=True, text=True, check=True)
    help_text = " ".join(shown.stdout.split())
    (row,) = [
        line
        for line in (SCHEMA_PATH.parents[1] / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `syncd status")
    ]
    for key in keys:
        assert key in help_text, key
        assert f"`{key}`" in row, key
    assert "docs/status.schema.json" in help_text and "docs/status.schema.json" in row
