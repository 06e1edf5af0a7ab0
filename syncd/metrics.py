"""Prometheus /metrics and /healthz for `syncd run` (`[metrics] listen`, off by default).

The daemon hands in one function that returns a `MetricsSnapshot`; every scrape reads a fresh
one, so nothing here keeps a second copy of the ledger's numbers. prometheus_client writes the
exposition format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from syncd.errors import ConfigError
from syncd.serving import WaitressServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsSnapshot:
    """The daemon's numbers at one moment."""

    #: library -> live files the ledger knows
    files: Mapping[str, int] = field(default_factory=dict)
    #: (library, state) -> files; states synced, pending, failed, held (deletes held)
    file_states: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: (gallery, state) -> items; states pending, synced, failed
    items: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: (operation, result) -> calls made since start; result "ok" or an error class name
    calls: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: intents due or in flight in the ledger
    queue_depth: int = 0
    #: paths waiting to settle in the watcher
    watch_pending: int = 0
    #: calls per second the shared rate limiter allows now
    rate: float = 0.0
    #: unix time of the last successful API call, None before the first
    last_success: float | None = None
    #: library -> "inotify" | "polling" | "missing"
    watch_modes: Mapping[str, str] = field(default_factory=dict)
    #: the daily budget's calls spent today and its limit; None when there is no cap
    budget_used: int | None = None
    budget_limit: int | None = None
    #: 1 while calls are paused because the daily budget is spent
    budget_paused: bool = False
    #: (library, reason code) -> whether it degrades health (False: the operator accepts it)
    library_conditions: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    #: library -> whether its root is polled instead of watched
    library_polling: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Health:
    """What /healthz answers: 200 when ok, 503 otherwise; `reason` is one line per cause."""

    ok: bool
    reason: str = "ok"


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        try:
            snap = self._snapshot()
        except Exception:  # a scrape must not take the daemon down
            log.exception("collecting metrics failed")
            return []
        return list(_families(snap))


def _families(snap: MetricsSnapshot) -> Iterator[Metric]:
    files = GaugeMetricFamily("syncd_files", "Files the ledger knows.", labels=["library"])
    for lib, n in sorted(snap.files.items()):
        files.add_metric([lib], n)
    yield files
    states = GaugeMetricFamily(
        "syncd_library_files", "Files by sync state.", labels=["library", "state"]
    )
    for (lib, state), n in sorted(snap.file_states.items()):
        states.add_metric([lib, state], n)
    yield states
    items = GaugeMetricFamily(
        "syncd_items", "Gallery items by sync state.", labels=["gallery", "state"]
    )
    for (gallery, state), n in sorted(snap.items.items()):
        items.add_metric([gallery, state], n)
    yield items
    calls = CounterMetricFamily(
        "syncd_api_calls", "API calls by operation and result.", labels=["operation", "result"]
    )
    for (op, result), n in sorted(snap.calls.items()):
        calls.add_metric([op, result], n)
    yield calls
    yield GaugeMetricFamily(
        "syncd_queue_depth", "Intents due or in flight in the ledger.", value=snap.queue_depth
    )
    yield GaugeMetricFamily(
        "syncd_watch_pending_paths", "Paths waiting to settle.", value=snap.watch_pending
    )
    yield GaugeMetricFamily(
        "syncd_rate_calls_per_second", "Current shared call rate.", value=snap.rate
    )
    if snap.last_success is not None:
        yield GaugeMetricFamily(
            "syncd_last_success_timestamp_seconds",
            "Unix time of the last successful API call.",
            value=snap.last_success,
        )
    if snap.budget_limit is not None:
        yield GaugeMetricFamily(
            "syncd_budget_used_calls",
            "Calls spent from today's budget (api.daily_budget), all hosts.",
            value=snap.budget_used or 0,
        )
        yield GaugeMetricFamily(
            "syncd_budget_limit_calls", "Calls per day api.daily_budget allows.",
            value=snap.budget_limit,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "syncd_budget_paused", "1 while calls wait because the daily budget is spent.",
            value=1 if snap.budget_paused else 0,
        )  # fmt: skip
    modes = GaugeMetricFamily(
        "syncd_watch_mode", "How each library root is watched (1 = this mode).",
        labels=["library", "mode"],
    )  # fmt: skip
    for lib, mode in sorted(snap.watch_modes.items()):
        modes.add_metric([lib, mode], 1)
    yield modes
    polling = GaugeMetricFamily(
        "syncd_library_polling", "1 while the library root is polled instead of watched.",
        labels=["library"],
    )  # fmt: skip
    for lib, polled in sorted(snap.library_polling.items()):
        polling.add_metric([lib], 1 if polled else 0)
    yield polling
    degraded = GaugeMetricFamily(
        "syncd_library_degraded",
        "A reason the library is not healthy (1; 0 when health.accept lists it).",
        labels=["library", "reason"],
    )
    for (lib, reason), counts in sorted(snap.library_conditions.items()):
        degraded.add_metric([lib, reason], 1 if counts else 0)
    yield degraded


def parse_listen(listen: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:9108') -> (host, port); ConfigError naming metrics.listen."""
    host, sep, port_s = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_s.isdigit() or not 0 <= int(port_s) < 65536:
        raise ConfigError(f'metrics.listen: expected "host:port", got {listen!r}')
    return host, int(port_s)


#: requests served at once: a scrape reads the ledger's counters, a probe asks for health
THREADS: Final = 2
#: open connections at most: a few scrapers and probes, far below the file descriptor limit
CONNECTION_LIMIT: Final = 50
#: seconds a silent connection stays open (a scraper's keep-alive between scrapes included)
IDLE_SECONDS: Final = 30
#: largest request body, bytes: scrapes and probes send none
MAX_BODY_BYTES: Final = 64 * 1024


class MetricsServer:
    """Serves /metrics (Prometheus text) and /healthz on a background thread (waitress,
    through syncd.serving, as the console and the local gallery). Listens at once: OSError
    when the address is taken."""

    def __init__(
        self,
        listen: str,
        snapshot: Callable[[], MetricsSnapshot],
        health: Callable[[], Health],
    ) -> None:
        host, port = parse_listen(listen)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_SnapshotCollector(snapshot))
        metrics_app = make_wsgi_app(self._registry)
        self._health = health

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                try:
                    verdict = self._health()
                except Exception as exc:  # the probe answers, whatever broke
                    verdict = Health(False, f"health check failed: {type(exc).__name__}")
                status = "200 OK" if verdict.ok else "503 Service Unavailable"
                body = (verdict.reason + "\n").encode()
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                return [body]
            if path in ("/metrics", "/"):
                result: Iterable[bytes] = metrics_app(environ, start_response)
                return result
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: try /metrics or /healthz\n"]

        self._server = WaitressServer(
            app,
            host=host,
            port=port,
            name="syncd-metrics",
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=IDLE_SECONDS,
            cleanup_interval=max(1, IDLE_SECONDS // 3),
            max_request_body_size=MAX_BODY_BYTES,
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self._server.port

    def start(self) -> None:
        """Begin serving."""
        self._server.start()

    def close(self) -> None:
        """Stop serving (if started) and release the port."""
        self._server.stop()
