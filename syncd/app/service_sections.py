"""The sections of the config each long-lived part of `syncd run` takes.

Each part commits its own small frozen section at start, and on a reload (SIGHUP) compares
the section of the new config with the one it committed: only the parts whose section
changed restart or re-commit. A change of ``api.qps`` re-rates the sync workers and leaves
every watch alone; a change of one library's globs rescans that library only; a change of
its root re-watches that root only (docs/architecture.md, The service).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from syncd.config import Config, LibraryConfig, PollingMode, SafetyConfig

#: keys of ``[api]`` the running client was made with: they take effect after a restart
API_CONNECTION_KEYS = (
    "endpoint", "auth", "api_key", "secret_key", "secret_key_file", "timeout", "ca_bundle",
)  # fmt: skip


@dataclass(frozen=True)
class EngineSection:
    """What the sync workers start with beside the ledger and the client: the libraries
    (their rules and roots), the planner's ``delete_grace``, ``[safety]``, and the call rate
    (``api.qps``, ``qps_schedule``, ``concurrency``, ``daily_budget``)."""

    libraries: tuple[LibraryConfig, ...]
    delete_grace: float
    safety: SafetyConfig
    qps: float
    qps_schedule: str
    concurrency: int
    daily_budget: int

    @classmethod
    def of(cls, config: Config) -> EngineSection:
        """The engine's section of ``config``."""
        api = config.api
        return cls(
            config.libraries, config.watch.delete_grace, config.safety,
            api.qps, api.qps_schedule, api.concurrency, api.daily_budget,
        )  # fmt: skip

    def changes(self, other: EngineSection) -> list[str]:
        """The names of the fields that differ in ``other``, in field order."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True)
class RootWatch:
    """What one library's watch is scheduled with: its root and whether symlinks are
    followed. Only a change of these re-watches the root."""

    root: Path
    follow_symlinks: bool

    @classmethod
    def of(cls, library: LibraryConfig) -> RootWatch:
        """The watch section of ``library``."""
        return cls(library.root, library.follow_symlinks)


@dataclass(frozen=True)
class LibraryRules:
    """What the scanner and the watcher's path filter take of one library: the library as
    configured and the ``[watch] ignore`` globs. Any change rescans that library."""

    library: LibraryConfig
    ignore: tuple[str, ...]

    @classmethod
    def of(cls, library: LibraryConfig, config: Config) -> LibraryRules:
        """The rules section of ``library`` under ``config``'s ``[watch] ignore``."""
        return cls(library, config.watch.ignore)


@dataclass(frozen=True)
class WatchTiming:
    """The watcher set's own section: the settle time, the full-rescan interval, and
    ``watch.polling`` (a change of it re-watches every root)."""

    settle: float
    rescan_interval: float
    polling: PollingMode

    @classmethod
    def of(cls, config: Config) -> WatchTiming:
        """The timing section of ``config``."""
        watch = config.watch
        return cls(watch.settle, watch.rescan_interval, watch.polling)


def keep_running(old: Config, new: Config) -> tuple[Config, list[str]]:
    """``new`` with what only a restart can change kept at its running value (the ledger,
    the API connection: endpoint, credentials, timeout, CA bundle), and the keys that
    differed (for a warning)."""
    differ = [
        f"api.{key}" for key in API_CONNECTION_KEYS
        if getattr(new.api, key) != getattr(old.api, key)
    ]  # fmt: skip
    if new.ledger != old.ledger:
        differ.append("ledger")
    connection = {key: getattr(old.api, key) for key in API_CONNECTION_KEYS}
    return replace(new, api=replace(new.api, **connection), ledger=old.ledger), differ
