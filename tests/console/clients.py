"""What the console's HTTP tests share: the bearer header, a logged-in browser session, the
ids of files the installation holds, and a status document without its time."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import select

from syncd.ledger.browse import LedgerReader, failed_files
from syncd.ledger.models import File

from .conftest import PASSWORD, World

BEARER = {"Authorization": f"Bearer {PASSWORD}"}


def logged_in(world: World) -> tuple[requests.Session, str]:
    """A browser-like session after the login form, and its CSRF token."""
    browser = requests.Session()
    answer = browser.post(f"{world.url}/login", data={"password": PASSWORD}, allow_redirects=False)
    assert answer.status_code == 303
    page = browser.get(f"{world.url}/failures")
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token is not None
    return browser, token.group(1)


def broken_file_id(world: World) -> int:
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            page = failed_files(session)
    finally:
        reader.close()
    (broken,) = [f for f in page.files if f.relpath == "broken.jpg"]
    return broken.id


def kept_file_id(world: World, relpath: str) -> int:
    reader = LedgerReader(world.config.ledger)
    try:
        with reader.reading() as session:
            return int(session.scalars(select(File.id).where(File.relpath == relpath)).one())
    finally:
        reader.close()


def without_as_of(document: dict[str, Any]) -> dict[str, Any]:
    """A status document without its ``as_of``, checked to be an ISO time with a zone."""
    as_of = datetime.fromisoformat(document.pop("as_of"))
    assert as_of.tzinfo is not None
    assert abs(as_of.timestamp() - time.time()) < 3600
    return document
