"""Hosts sharing one ledger (README, Several file servers): who they are, their heartbeat,
the libraries each owns, the one account they all call, and the tag rules every host's
planner needs.

A library belongs to the host whose config names it (``libraries.host``); a library written
before schema v4 (no host) goes to the first host that names it. Another host naming it is
refused until the owner is released (:func:`release_host`, ``syncd ledger release-host``).
The account is the endpoint and a hash of the API key the first host used; the key itself
is never stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from syncd import __version__
from syncd.config import Config, LibraryConfig, TagRule
from syncd.errors import ConfigError
from syncd.ledger.dialect import insert_or_ignore, is_postgresql
from syncd.ledger.models import Host, Library
from syncd.ledger.schema import Ledger
from syncd.ledger.settings import get_setting, put_setting, settings_with_prefix

#: settings key of the account every host of the ledger calls (endpoint, key hash)
ACCOUNT_KEY = "account"
#: settings key prefix of a library's tag rules (JSON), so every host plans its items alike
RULES_PREFIX = "library_rules:"
#: seconds without a heartbeat after which a host counts as gone
HOST_GONE_AFTER = 60.0
#: the pg_advisory_xact_lock key planners hold ("plan" in ASCII)
PLANNING_LOCK_KEY = 0x706C616E


def hold_planning_lock(session: Session) -> None:
    """One planner at a time across every host, until this transaction ends.

    Two hosts planning at once could each make an item of one content (or rewrite one
    item from stale rows). SQLite's write lock serializes them already; PostgreSQL takes a
    transaction-level advisory lock.
    """
    connection = session.connection()
    if is_postgresql(connection):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLANNING_LOCK_KEY})


def join_ledger(
    ledger: Ledger, config: Config, now: float | None = None, *, register: bool = True
) -> None:
    """Before a host scans or calls: check the account, register the host and take its
    libraries, in one transaction. ``register=False`` leaves the host's row alone (a dry
    run's rehearsal: on PostgreSQL it would hold the row the running service beats on).

    Raises HostRefused (a ConfigError: exit 2) naming the owner of a library this config
    names, or saying the ledger syncs another account.
    """
    at = time.time() if now is None else now
    with ledger.transaction() as session:
        check_account(session, Account.of(config.api.endpoint, config.api.api_key), at)
        if register:
            register_host(session, config.host.name, os.getpid(), __version__, at)
        claim_libraries(session, config.host.name, config.libraries)


class HostRefused(ConfigError):
    """This host may not sync with this ledger: a library it names belongs to another host,
    or its ``[api]`` names another account than the ledger's."""


@dataclass(frozen=True)
class Account:
    """The account a ledger syncs to: the endpoint and the SHA-256 (hex) of the API key."""

    endpoint: str
    api_key_sha256: str

    @classmethod
    def of(cls, endpoint: str, api_key: str) -> Account:
        """The account of an ``[api]`` section (the key is hashed here, never kept)."""
        digest = hashlib.sha256(b"syncd-account\0" + api_key.encode("utf-8")).hexdigest()
        return cls(endpoint.rstrip("/"), digest)


def check_account(session: Session, account: Account, now: float) -> None:
    """Record ``account`` as the ledger's on first use; refuse another one (HostRefused)."""
    stored = get_setting(session, ACCOUNT_KEY)
    if stored is None:
        put_setting(session, ACCOUNT_KEY, json.dumps(account.__dict__), now)
        return
    try:
        known = Account(**json.loads(stored))
    except (ValueError, TypeError):
        put_setting(session, ACCOUNT_KEY, json.dumps(account.__dict__), now)
        return
    if known.endpoint != account.endpoint:
        raise HostRefused(
            f"api.endpoint: this ledger syncs the account at {known.endpoint}, not "
            f"{account.endpoint}; every host of a ledger calls one account"
        )
    if known.api_key_sha256 != account.api_key_sha256:
        raise HostRefused(
            f"api.api_key: not the key of the account this ledger syncs (at {known.endpoint}); "
            "every host of a ledger calls one account"
        )


def register_host(session: Session, name: str, pid: int, version: str, now: float) -> None:
    """Say that ``name`` runs (as process ``pid``) from ``now`` (seconds since the epoch)."""
    session.execute(
        insert_or_ignore(Host).values(
            name=name, pid=pid, started_at=now, last_seen=now, version=version
        )
    )
    session.execute(
        update(Host)
        .where(Host.name == name)
        .values(pid=pid, started_at=now, last_seen=now, version=version)
    )


def beat(session: Session, name: str, now: float) -> None:
    """The heartbeat of host ``name`` at ``now`` (seconds since the epoch)."""
    done = session.execute(update(Host).where(Host.name == name).values(last_seen=now))
    if not done.rowcount:  # type: ignore[attr-defined]
        # released meanwhile (release-host): a live host is back in the list
        register_host(session, name, 0, "", now)


def claim_libraries(session: Session, host: str, libraries: Sequence[LibraryConfig]) -> None:
    """Make ``host`` the owner of ``libraries`` (its config's): new ones and ones without an
    owner are taken; one owned by another host raises HostRefused naming that host. The
    libraries' tag rules are kept for the other hosts' planners."""
    rows = {
        row.name: row
        for row in session.scalars(
            select(Library).where(Library.name.in_([lib.name for lib in libraries]))
        )
    }
    for lib in libraries:
        row = rows.get(lib.name)
        if row is not None and row.host not in (None, host):
            raise HostRefused(
                f"library {lib.name}: owned by host {row.host} in this ledger; a library "
                f"belongs to one host (once host {row.host} is gone for good: "
                f"syncd ledger release-host {row.host})"
            )
    for lib in libraries:
        row = rows.get(lib.name)
        if row is None:
            session.add(Library(name=lib.name, gallery=lib.gallery, root=str(lib.root), host=host))
        elif row.host is None:
            row.host = host
        rules = json.dumps([[rule.glob, list(rule.tags)] for rule in lib.rules])
        if get_setting(session, RULES_PREFIX + lib.name) != rules:
            put_setting(session, RULES_PREFIX + lib.name, rules, 0.0)
    session.flush()


def library_rules(session: Session) -> dict[str, tuple[TagRule, ...]]:
    """Library name -> the tag rules its owner's config gives it (every host's libraries)."""
    rules: dict[str, tuple[TagRule, ...]] = {}
    for key, stored in settings_with_prefix(session, RULES_PREFIX).items():
        try:
            rules[key.removeprefix(RULES_PREFIX)] = tuple(
                TagRule(str(glob), tuple(int(t) for t in tags)) for glob, tags in json.loads(stored)
            )
        except (ValueError, TypeError):
            continue  # unreadable: the owner writes it again at its next start
    return rules


class HostAlive(ConfigError):
    """``release-host`` of a host that was seen recently."""


def release_host(session: Session, name: str, now: float) -> list[str]:
    """Forget host ``name``: its libraries have no owner until another host names them.

    Returns their names. Raises HostAlive when it was seen within :data:`HOST_GONE_AFTER`
    seconds (stop it first), ConfigError when the ledger knows no such host.
    """
    last_seen = session.scalar(select(Host.last_seen).where(Host.name == name))
    owned = list(session.scalars(select(Library.name).where(Library.host == name)))
    if last_seen is None and not owned:
        raise ConfigError(f"host {name}: not in this ledger")
    if last_seen is not None and now - last_seen < HOST_GONE_AFTER:
        raise HostAlive(
            f"host {name}: seen {max(0.0, now - last_seen):.0f} s ago; stop syncd there "
            f"and wait {HOST_GONE_AFTER:.0f} s before releasing it"
        )
    session.execute(update(Library).where(Library.host == name).values(host=None))
    session.execute(delete(Host).where(Host.name == name))
    return sorted(owned)
