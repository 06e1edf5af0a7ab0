"""TOML -> typed, validated configuration (SPEC §5). Errors name the key and what was expected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from syncd.protocol import GalleryName

AuthMode = Literal["token", "bce"]
PollingMode = Literal["auto", "on", "off"]
OversizePolicy = Literal["downscale", "skip"]

DEFAULT_CONFIG_PATH = Path("/etc/syncd/config.toml")


@dataclass(frozen=True)
class ApiConfig:
    endpoint: str = "embedded"
    auth: AuthMode = "token"
    api_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    secret_key_file: str = ""
    qps: float = 10.0
    concurrency: int = 4
    timeout: float = 30.0
    ca_bundle: str = ""


@dataclass(frozen=True)
class LedgerConfig:
    path: Path = Path("/var/lib/syncd/ledger.db")


@dataclass(frozen=True)
class WatchConfig:
    settle: float = 2.0
    delete_grace: float = 30.0
    rescan_interval: float = 3600.0
    polling: PollingMode = "auto"
    ignore: tuple[str, ...] = (".*", "*~", "*.tmp", "*.part", "*.swp", "*.crdownload")


@dataclass(frozen=True)
class SafetyConfig:
    max_delete_fraction: float = 0.25
    delete_latency: float = 14400.0


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = ""


@dataclass(frozen=True)
class TagRule:
    glob: str
    tags: tuple[int, ...]


@dataclass(frozen=True)
class LibraryConfig:
    name: str
    root: Path
    gallery: GalleryName
    include: tuple[str, ...] = (
        "*.jpg", "*.jpeg", "*.png", "*.bmp", "*.gif", "*.webp", "*.tif", "*.tiff",
    )
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    oversize: OversizePolicy = "downscale"
    rules: tuple[TagRule, ...] = ()


@dataclass(frozen=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    libraries: tuple[LibraryConfig, ...] = ()
    #: the file this config was read from (None when built in code)
    source: Path | None = None
