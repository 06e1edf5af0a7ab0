"""TOML -> typed, validated configuration (README, Configuration). Errors name the key and what was expected."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import stat
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from syncd.api.baidu.galleries import GALLERIES, GALLERY_NAMES, GalleryName
from syncd.api.baidu.limits import MAX_TAGS, TAG_MAX, TAG_MIN
from syncd.errors import ConfigError
from syncd.paths.filters import TAKE_BACK, PathMatcher, WalkFilter, ignore_globs
from syncd.rate_schedule import RateSchedule, parse_schedule

AuthMode = Literal["token", "bce"]
PollingMode = Literal["auto", "on", "off"]
OversizePolicy = Literal["downscale", "skip"]
AUTH_MODES: tuple[AuthMode, ...] = ("token", "bce")
OVERSIZE_POLICIES: tuple[OversizePolicy, ...] = ("downscale", "skip")

DEFAULT_CONFIG_PATH = Path("/etc/syncd/config.toml")

_S = TypeVar("_S", bound=str)


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
    #: calls per day (00:00 UTC+8 to the next), all hosts together; 0 = no cap
    daily_budget: int = 0
    #: rates by time of the account's day (UTC+8), e.g. "08:00,3 19:00,10"; "" = qps always
    qps_schedule: str = ""

    @property
    def rates(self) -> RateSchedule:
        """The account's rate by time of day: ``qps_schedule``, else ``qps`` always."""
        return parse_schedule(self.qps_schedule, self.qps)


@dataclass(frozen=True)
class LedgerConfig:
    """Where the ledger is: SQLite at ``path`` (one host), or PostgreSQL at ``url`` (docs/rules.md, Several hosts).

    With ``url``, ``path`` is ``state_dir/ledger.db``: no database there, only the anchor of
    this host's local state (``ledger.db.lock``, the lost-add spool ``ledger.db.inflight/``;
    the embedded gallery's ``gallery/`` beside it), as for a SQLite ledger in that folder.
    """

    path: Path = Path("/var/lib/syncd/ledger.db")
    #: the PostgreSQL ledger as the user wrote it (libpq form, no password); "" = SQLite
    url: str = ""
    password_file: str = ""
    #: from $SYNCD_LEDGER_PASSWORD or password_file; "" = libpq's own (PGPASSFILE, ~/.pgpass)
    password: str = field(default="", repr=False)

    @property
    def shared(self) -> bool:
        """Whether the ledger is a PostgreSQL one (several hosts may share it)."""
        return bool(self.url)

    def exists(self) -> bool:
        """Whether there is a ledger to read: a PostgreSQL database always is one."""
        return self.shared or self.path.exists()


@dataclass(frozen=True)
class WatchConfig:
    settle: float = 2.0
    delete_grace: float = 30.0
    rescan_interval: float = 3600.0
    polling: PollingMode = "auto"
    #: name globs never synced, beside the built-in system folders (syncd.paths.filters.SYSTEM_FOLDERS);
    #: an entry "!name" takes one of those back
    ignore: tuple[str, ...] = (".*", "*~", "*.tmp", "*.part", "*.swp", "*.crdownload")


@dataclass(frozen=True)
class SafetyConfig:
    max_delete_fraction: float = 0.25
    delete_latency: float = 14400.0


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = ""


@dataclass(frozen=True)
class HealthConfig:
    """What /healthz forgives: ``accept`` lists reason codes (``syncd.health.REASONS``) that
    are still shown but keep /healthz at 200, such as "polling" for roots on NFS."""

    accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsoleConfig:
    """The web console (docs/rules.md, Console on loopback): ``listen`` "" = off; the password never in a repr."""

    listen: str = ""
    password_file: str = ""
    #: from password_file or $SYNCD_CONSOLE_PASSWORD; "" = none (loopback only)
    password: str = field(default="", repr=False)


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
        "*.jpg",
        "*.jpeg",
        "*.png",
        "*.bmp",
        "*.gif",
        "*.webp",
        "*.tif",
        "*.tiff",
        "*.heic",
        "*.heif",
        "*.avif",
    )
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    oversize: OversizePolicy = "downscale"
    rules: tuple[TagRule, ...] = ()


#: the longest host.name: it heads every claim of the host in the ledger (64 characters)
MAX_HOST_NAME = 40


@dataclass(frozen=True)
class HostConfig:
    """This host in a shared ledger (docs/rules.md, Several hosts): ``name`` owns the libraries its config names."""

    name: str = ""

    @property
    def is_machine(self) -> bool:
        """Whether ``name`` is the machine's own hostname (its local state keeps plain names)."""
        return self.name == default_host_name()

    def local_path(self, anchor: Path, suffix: str) -> Path:
        """This host's local file ``<anchor><suffix>`` (lock, spool of lost adds); named after
        the host when ``name`` is not the machine's, so hosts sharing a folder keep theirs."""
        infix = "" if self.is_machine else "." + self.name
        return anchor.with_name(anchor.name + infix + suffix)


def default_host_name() -> str:
    """The machine's hostname, cut to :data:`MAX_HOST_NAME` characters."""
    return socket.gethostname()[:MAX_HOST_NAME] or "localhost"


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
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    host: HostConfig = field(default_factory=lambda: HostConfig(default_host_name()))
    health: HealthConfig = field(default_factory=HealthConfig)


# ---------------------------------------------------------------------------------------------
# Loading: TOML file -> Config. Every check raises ConfigError with one line naming the key.

CONFIG_ENV = "SYNCD_CONFIG"
API_KEY_ENV = "SYNCD_API_KEY"
SECRET_KEY_ENV = "SYNCD_SECRET_KEY"
LEDGER_PASSWORD_ENV = "SYNCD_LEDGER_PASSWORD"
CONSOLE_PASSWORD_ENV = "SYNCD_CONSOLE_PASSWORD"
CREDENTIALS_DIR_ENV = "CREDENTIALS_DIRECTORY"
#: a library name is part of every brief; this bound keeps a brief within 256 bytes
MAX_LIBRARY_NAME_BYTES = 100

_log = logging.getLogger(__name__)


def config_path(cli_value: str | Path | None = None) -> Path:
    """The config file to read: ``-c/--config``, else ``$SYNCD_CONFIG``, else the default."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get(CONFIG_ENV, "")
    return Path(env) if env else DEFAULT_CONFIG_PATH


def load_config(path: str | Path | None = None) -> Config:
    """Read, validate and resolve the config file found by :func:`config_path`.

    Relative paths in the file resolve against the file's folder; ``$SYNCD_API_KEY`` and
    ``$SYNCD_SECRET_KEY`` override the keys of the file. Raises :class:`ConfigError`.
    """
    file = config_path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: the config file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    config = parse_config(data, base_dir=file.resolve().parent, source=file)
    if config.api.secret_key and _mentions_secret(data):
        _warn_if_readable_by_others(file)
    return config


def parse_config(
    data: Mapping[str, Any],
    base_dir: Path,
    source: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Validate a parsed TOML document into a :class:`Config` (paths resolved under ``base_dir``).

    Unknown keys are refused first, then every value, and only then are the files the
    config names read: the typo an operator made shows before a file missing elsewhere."""
    env = os.environ if environ is None else environ
    _refuse_unknown_keys(data, _SCHEMA, "")
    _parse_all(data, base_dir, source, env, read_files=False)
    return _parse_all(data, base_dir, source, env, read_files=True)


#: the keys each table knows (a nested dict: a table of tables; a table array is its item's keys)
_RULE_KEYS: dict[str, Any] = {"glob": None, "tags": None}
_LIBRARY_KEYS: dict[str, Any] = {
    "name": None, "root": None, "gallery": None, "include": None, "exclude": None,
    "follow_symlinks": None, "oversize": None, "rule": _RULE_KEYS,
}  # fmt: skip
_SCHEMA: dict[str, Any] = {
    "api": dict.fromkeys((
        "endpoint", "auth", "api_key", "secret_key", "secret_key_file", "qps", "qps_schedule",
        "concurrency", "timeout", "daily_budget", "ca_bundle",
    )),
    "ledger": dict.fromkeys(("path", "url", "password_file", "state_dir")),
    "watch": dict.fromkeys(("settle", "delete_grace", "rescan_interval", "polling", "ignore")),
    "safety": dict.fromkeys(("max_delete_fraction", "delete_latency")),
    "metrics": dict.fromkeys(("listen",)),
    "console": dict.fromkeys(("listen", "password_file")),
    "host": dict.fromkeys(("name",)),
    "health": dict.fromkeys(("accept",)),
    "library": _LIBRARY_KEYS,
}  # fmt: skip


def _refuse_unknown_keys(data: Any, schema: Mapping[str, Any], where: str) -> None:
    """Raise ConfigError naming the first key ``schema`` does not know, at any depth, with the
    known key it is closest to. Values of the wrong type are left to the parse to name."""
    if not isinstance(data, dict):
        return
    for name, value in data.items():
        at = f"{where}.{name}" if where else name
        if name not in schema:
            raise ConfigError(unknown_key_message(at, name, schema))
        inner = schema[name]
        if inner is None:
            continue
        items = value if isinstance(value, list) else [value]
        for n, item in enumerate(items, start=1):
            _refuse_unknown_keys(item, inner, f"{at}[{n}]" if isinstance(value, list) else at)


def unknown_key_message(key: str, name: str, known: Iterable[str]) -> str:
    """The line for an unknown ``key`` (its last part ``name``): "did you mean" the closest
    known key when one is close, else the keys the table knows."""
    import difflib  # only for this message: a config that loads never needs it

    names = list(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"{key}: unknown key; did you mean `{close[0]}`?"
    return f"{key}: unknown key (expected one of {', '.join(names)})"


def _parse_all(
    data: Mapping[str, Any],
    base_dir: Path,
    source: Path | None,
    env: Mapping[str, str],
    read_files: bool,
) -> Config:
    """The config of ``data``; ``read_files`` False checks every value but reads no file."""
    files = _Files(base_dir, env, read_files)
    top = _Table(data, "")
    api = _parse_api(top.table("api"), files)
    ledger = _parse_ledger(top.table("ledger"), files)
    watch = _parse_watch(top.table("watch"))
    safety = _parse_safety(top.table("safety"))
    metrics = _parse_metrics(top.table("metrics"))
    console = _parse_console(top.table("console"), files)
    host = _parse_host(top.table("host"))
    health = _parse_health(top.table("health"))
    libraries = tuple(
        _parse_library(_Table(item, f"library[{n}]"), base_dir)
        for n, item in enumerate(top.table_array("library"), start=1)
    )
    top.finish()
    if not libraries:
        raise ConfigError("library: at least one [[library]] table is required")
    seen: set[str] = set()
    for n, lib in enumerate(libraries, start=1):
        if lib.name in seen:
            raise ConfigError(f'library[{n}].name: "{lib.name}" is used by an earlier library')
        seen.add(lib.name)
    return Config(
        api, ledger, watch, safety, metrics, libraries, source, console=console, host=host,
        health=health,
    )  # fmt: skip


def _parse_api(t: _Table, files: _Files) -> ApiConfig:
    env = files.env
    d = ApiConfig()
    endpoint = t.string("endpoint", d.endpoint)
    if endpoint != "embedded" and not re.match(r"https?://[^/\s]+", endpoint):
        raise ConfigError(
            f'{t.key("endpoint")}: expected "embedded" or an http(s) URL, got {_show(endpoint)}'
        )
    auth = t.choice("auth", AUTH_MODES, d.auth)
    api_key = t.string("api_key", d.api_key)
    secret_key = t.string("secret_key", d.secret_key)
    secret_key_file = t.string("secret_key_file", d.secret_key_file)
    if secret_key and secret_key_file:
        raise ConfigError(
            f"{t.key('secret_key_file')}: set secret_key or secret_key_file, not both"
        )
    qps = t.number("qps", d.qps, above=0.0)
    qps_schedule = t.string("qps_schedule", d.qps_schedule).strip()
    try:
        parse_schedule(qps_schedule, qps)
    except ValueError as exc:
        raise ConfigError(f"{t.key('qps_schedule')}: {exc}") from None
    concurrency = t.integer("concurrency", d.concurrency, least=1)
    timeout = t.number("timeout", d.timeout, above=0.0)
    daily_budget = t.integer("daily_budget", d.daily_budget, least=0)
    ca_bundle = t.string("ca_bundle", d.ca_bundle)
    if ca_bundle:
        ca_bundle = files.ca_bundle(t.key("ca_bundle"), ca_bundle)
    t.finish()
    if env.get(API_KEY_ENV):
        api_key = env[API_KEY_ENV]
    if env.get(SECRET_KEY_ENV):
        secret_key = env[SECRET_KEY_ENV]
    elif secret_key_file:
        secret_key_file, secret_key = files.secret(t.key("secret_key_file"), secret_key_file)
    return ApiConfig(
        endpoint.rstrip("/"),
        auth,
        api_key,
        secret_key,
        secret_key_file,
        qps,
        concurrency,
        timeout,
        ca_bundle,
        daily_budget,
        qps_schedule,
    )


def require_credentials(api: ApiConfig) -> None:
    """Raise ConfigError when a gallery that is not the embedded one (which takes any key)
    has no API Key or no Secret Key: the first call would be refused."""
    if api.endpoint != "embedded" and not (api.api_key and api.secret_key):
        raise ConfigError(
            "api.api_key and api.secret_key must both be set "
            f"(or ${API_KEY_ENV}, ${SECRET_KEY_ENV}, api.secret_key_file)"
        )


def check_listen(listen: str, key: str, any_port: bool = False) -> None:
    """Raise ConfigError naming ``key`` unless ``listen`` is "" or "host:port" (IPv6 in
    brackets) with a port 1..65535 (``any_port``: 0 too, any free port)."""
    if not listen:
        return
    host, sep, port = listen.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit():
        raise ConfigError(f'{key}: expected "host:port" or "", got {_show(listen)}')
    if not (any_port and int(port) == 0) and not 1 <= int(port) <= 65535:
        raise ConfigError(f"{key}: port {int(port)} is out of range (1-65535)")


@dataclass(frozen=True)
class _Files:
    """The files a config names: read, or (``read`` False) only named, so that every value is
    checked before any file is looked at."""

    base_dir: Path
    env: Mapping[str, str]
    read: bool

    def secret(self, key: str, name: str) -> tuple[str, str]:
        """(resolved file, secret) of the file ``name`` set at ``key``."""
        if not self.read:
            return name, "not read yet"
        return _read_secret(key, name, self.base_dir, self.env)

    def ca_bundle(self, key: str, name: str) -> str:
        """The CA file ``name`` set at ``key``, resolved; ConfigError when it is no file."""
        path = self.base_dir / name
        if self.read and not path.is_file():
            raise ConfigError(f"{key}: no such file {_show(str(path))}")
        return str(path)


def _read_secret(key: str, name: str, base_dir: Path, env: Mapping[str, str]) -> tuple[str, str]:
    """(resolved file, secret): a relative name is looked up under systemd's credentials first."""
    candidates = []
    creds = env.get(CREDENTIALS_DIR_ENV, "")
    if creds and not Path(name).is_absolute():
        candidates.append(Path(creds) / name)
    candidates.append(base_dir / name)
    for candidate in candidates:
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
                raise ConfigError(f"{key}: cannot read {_show(str(candidate))}: {reason}") from None
            secret = text.strip("\r\n")
            if not secret:
                raise ConfigError(f"{key}: {_show(str(candidate))} is empty")
            return str(candidate), secret
    raise ConfigError(f"{key}: no such file {_show(str(candidates[-1]))}")


def _parse_ledger(t: _Table, files: _Files) -> LedgerConfig:
    base_dir, env = files.base_dir, files.env
    default = LedgerConfig().path
    path = t.string("path", str(default))
    if not path:
        raise ConfigError(f'{t.key("path")}: expected a file path, got ""')
    url = t.string("url", "")
    password_file = t.string("password_file", "")
    state_dir = t.string("state_dir", "")
    t.finish()
    if not url:
        for key, value in (("password_file", password_file), ("state_dir", state_dir)):
            if value:
                raise ConfigError(f"{t.key(key)}: only with {t.key('url')} (a PostgreSQL ledger)")
        return LedgerConfig(base_dir / path)
    if "path" in t.data:
        raise ConfigError(
            f"{t.key('path')} and {t.key('url')}: set one (path: SQLite on this host; url: "
            f"PostgreSQL; this host's local state goes to {t.key('state_dir')})"
        )
    check_ledger_url(url, t.key("url"))
    anchor = (base_dir / state_dir / default.name) if state_dir else default
    password = env.get(LEDGER_PASSWORD_ENV, "")
    if not password and password_file:
        password_file, password = files.secret(t.key("password_file"), password_file)
    return LedgerConfig(anchor, url, password_file, password)


def check_ledger_url(url: str, key: str = "ledger.url") -> None:
    """Raise ConfigError (naming ``key``) unless ``url`` is a PostgreSQL URL without a password."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{key}: expected a postgresql:// URL, got {_show(url)}")
    if re.match(r"[a-z]+://[^/@?]*:[^/@?]+@", url) or re.search(r"[?&]password=", url):
        # said without the URL: it would put the password on the terminal and in logs
        raise ConfigError(
            f"{key}: holds a password; put it in ledger.password_file or "
            f"${LEDGER_PASSWORD_ENV} instead"
        )


def _parse_watch(t: _Table) -> WatchConfig:
    d = WatchConfig()
    settle = t.number("settle", d.settle, least=0.0)
    grace = t.number("delete_grace", d.delete_grace, least=0.0)
    rescan = t.number("rescan_interval", d.rescan_interval, least=0.0)
    polling_raw = t.raw("polling", d.polling)
    polling: PollingMode
    if polling_raw is True:
        polling = "on"
    elif polling_raw is False:
        polling = "off"
    elif polling_raw == "auto":
        polling = "auto"
    else:
        raise ConfigError(
            f'{t.key("polling")}: expected "auto", true or false, got {_show(polling_raw)}'
        )
    # extends the built-in system folders (syncd.paths.filters.SYSTEM_FOLDERS); "!name" takes one back
    ignore = t.string_list("ignore", d.ignore)
    try:
        ignore_globs(ignore)  # an "!name" that takes back no system folder
        if ignore != d.ignore:  # only the globs written are compiled (see _globs)
            WalkFilter(ignore=[glob for glob in ignore if not glob.startswith(TAKE_BACK)])
    except ValueError as exc:
        raise ConfigError(f"{t.key('ignore')}: {exc}") from None
    t.finish()
    return WatchConfig(settle, grace, rescan, polling, ignore)


def _parse_safety(t: _Table) -> SafetyConfig:
    d = SafetyConfig()
    fraction = t.number("max_delete_fraction", d.max_delete_fraction, least=0.0, most=1.0)
    latency = t.number("delete_latency", d.delete_latency, least=0.0)
    t.finish()
    return SafetyConfig(fraction, latency)


def _parse_metrics(t: _Table) -> MetricsConfig:
    listen = t.string("listen", MetricsConfig().listen)
    check_listen(listen, t.key("listen"))
    t.finish()
    return MetricsConfig(listen)


def _parse_health(t: _Table) -> HealthConfig:
    from syncd.health import REASONS

    accept = t.string_list("accept", HealthConfig().accept)
    for code in accept:
        if code not in REASONS:
            raise ConfigError(
                f"{t.key('accept')}: unknown reason {_show(code)} (expected some of "
                f"{', '.join(REASONS)})"
            )
    t.finish()
    return HealthConfig(tuple(dict.fromkeys(accept)))


def _parse_host(t: _Table) -> HostConfig:
    name = t.string("name", "")
    t.finish()
    if not name:
        return HostConfig(default_host_name())
    if len(name) > MAX_HOST_NAME or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(
            f"{t.key('name')}: expected a host name of at most {MAX_HOST_NAME} letters, digits, "
            f"'.', '_' or '-', got {_show(name)}"
        )
    return HostConfig(name)


def _parse_console(t: _Table, files: _Files) -> ConsoleConfig:
    listen = t.string("listen", ConsoleConfig().listen)
    password_file = t.string("password_file", ConsoleConfig().password_file)
    t.finish()
    # port 0 (any free port) is kept for the console: tests serve it so
    check_listen(listen, t.key("listen"), any_port=True)
    password = files.env.get(CONSOLE_PASSWORD_ENV, "")
    if not password and password_file:
        password_file, password = files.secret(t.key("password_file"), password_file)
    if listen and not password and not is_loopback(listen):
        raise ConfigError(
            f"{t.key('password_file')}: required when {t.key('listen')} is not loopback "
            f"(or ${CONSOLE_PASSWORD_ENV})"
        )
    return ConsoleConfig(listen, password_file, password)


def is_loopback(listen: str) -> bool:
    """Whether the "host:port" ``listen`` address only takes connections from this machine."""
    import ipaddress

    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_library(t: _Table, base_dir: Path) -> LibraryConfig:
    name = t.string("name", None)
    if not name.strip():
        raise ConfigError(f"{t.key('name')}: expected a non-empty name, got {_show(name)}")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_LIBRARY_NAME_BYTES:
        raise ConfigError(f"{t.key('name')}: expected at most {MAX_LIBRARY_NAME_BYTES} bytes")
    root = t.string("root", None)
    if not root:
        raise ConfigError(f'{t.key("root")}: expected a folder path, got ""')
    gallery = t.choice("gallery", GALLERY_NAMES, None)
    d = LibraryConfig(name, Path(root), gallery)
    include = _globs(t, "include", d.include)
    exclude = _globs(t, "exclude", d.exclude)
    follow = t.boolean("follow_symlinks", d.follow_symlinks)
    oversize = t.choice("oversize", OVERSIZE_POLICIES, d.oversize)
    rules = tuple(
        _parse_rule(_Table(item, f"{t.key('rule')}[{n}]"), gallery)
        for n, item in enumerate(t.table_array("rule"), start=1)
    )
    t.finish()
    return LibraryConfig(name, base_dir / root, gallery, include, exclude, follow, oversize, rules)


def _parse_rule(t: _Table, gallery: GalleryName) -> TagRule:
    (glob,) = _globs(t, "glob", None)
    raw = t.raw("tags", None)
    what = "class_id1, class_id2" if GALLERIES[gallery].tag_style == "class_id" else "tags"
    expected = f"a list of at most {MAX_TAGS} integers {TAG_MIN}..{TAG_MAX} ({what})"
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise ConfigError(f"{t.key('tags')}: expected {expected}, got {_show(raw)}")
    for tag in raw:
        if isinstance(tag, bool) or not isinstance(tag, int) or not TAG_MIN <= tag <= TAG_MAX:
            raise ConfigError(f"{t.key('tags')}: expected {expected}, got {_show(raw)}")
    t.finish()
    return TagRule(glob, tuple(raw))


def _globs(t: _Table, name: str, default: tuple[str, ...] | None) -> tuple[str, ...]:
    """A glob (``default`` None: one required string) or a list of them, checked to compile.

    The defaults are not compiled here, nor the built-in system folder names (tests/config
    checks that they compile): a command that walks no library (status) compiles none of
    them, one that does compiles them once, for its walk (about 2 ms, most of a load).
    """
    if default is None:
        globs: tuple[str, ...] = (t.string(name, None),)
    else:
        globs = t.string_list(name, default)
        if globs == default:
            return globs
    try:
        PathMatcher(globs)
    except ValueError as exc:
        raise ConfigError(f"{t.key(name)}: {exc}") from None
    return globs


class _Table:
    """One TOML table being validated: typed getters that remember which keys were read."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'config'}: expected a table, got {_show(data)}")
        self.data: dict[str, Any] = data
        self.where = where
        self.known: list[str] = []

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def raw(self, name: str, default: Any) -> Any:
        self.known.append(name)
        if name in self.data:
            return self.data[name]
        if default is None:
            raise ConfigError(f"{self.key(name)}: required key is missing")
        return default

    def table(self, name: str) -> _Table:
        return _Table(self.raw(name, {}), self.key(name))

    def table_array(self, name: str) -> list[Any]:
        value = self.raw(name, [])
        if not isinstance(value, list):
            raise ConfigError(f"{self.key(name)}: expected an array of tables [[{self.key(name)}]]")
        return value

    def string(self, name: str, default: str | None) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)}: expected a string, got {_show(value)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {_show(value)}")
        return value

    def integer(self, name: str, default: int, least: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(
                f"{self.key(name)}: expected an integer >= {least}, got {_show(value)}"
            )
        return value

    def number(
        self,
        name: str,
        default: float,
        least: float | None = None,
        above: float | None = None,
        most: float | None = None,
    ) -> float:
        value = self.raw(name, default)
        bounds = []
        if least is not None:
            bounds.append(f">= {least:g}")
        if above is not None:
            bounds.append(f"> {above:g}")
        if most is not None:
            bounds.append(f"<= {most:g}")
        expected = "a number " + " and ".join(bounds)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ConfigError(f"{self.key(name)}: expected {expected}, got {_show(value)}")
        number = float(value)
        if (
            (least is not None and number < least)
            or (above is not None and number <= above)
            or (most is not None and number > most)
        ):
            raise ConfigError(f"{self.key(name)}: expected {expected}, got {_show(value)}")
        return number

    def choice(self, name: str, choices: Sequence[_S], default: _S | None) -> _S:
        value = self.raw(name, default)
        for choice in choices:
            if value == choice:
                return choice
        raise ConfigError(
            f"{self.key(name)}: expected one of {', '.join(choices)}, got {_show(value)}"
        )

    def string_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)}: expected a list of strings, got {_show(value)}")
        return tuple(value)

    def finish(self) -> None:
        """Refuse keys this table does not know."""
        for name in self.data:
            if name not in self.known:
                raise ConfigError(unknown_key_message(self.key(name), name, self.known))


def _show(value: Any) -> str:
    """A TOML-like rendering of a bad value for an error line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]" if len(value) <= 4 else "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _mentions_secret(data: Mapping[str, Any]) -> bool:
    api = data.get("api")
    return isinstance(api, dict) and bool(api.get("secret_key"))


def _warn_if_readable_by_others(file: Path) -> None:
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        _log.warning(
            "%s holds api.secret_key and is readable by group/others: chmod 600 it, or use "
            "secret_key_file or $%s",
            file,
            SECRET_KEY_ENV,
        )
