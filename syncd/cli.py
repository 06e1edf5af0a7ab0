"""Command line (README, Commands). Commands parse, call one use case of ``syncd.app``, print:
no logic of their own, and no import of a stage (docs/architecture.md, The doors). Each
command imports its use case when it runs, so a command starts fast."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from syncd import __version__
from syncd.speedups import import_for_good

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3


def _setup_logging(verbose: bool) -> None:
    # one-shot commands print their own summary: the log adds only warnings (-v: all);
    # the services (run, gallery serve) log at INFO
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class _SyncdGroup(click.Group):
    """The root command: a usage error is one line on stderr naming the help to read, exit 2
    (click's own is a three-line usage block)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, "syncd", complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # `syncd` alone: the help
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            click.echo(usage_line(exc), err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def usage_line(error: click.UsageError) -> str:
    """``syncd: <what is wrong> (see syncd <command> --help)``, on one line."""
    command = error.ctx.command_path.split(" ", 1)[1:] if error.ctx is not None else []
    where = " ".join(["syncd", *command])
    message = " ".join(error.format_message().split())
    return f"syncd: {message} (see {where} --help)"


@click.group(cls=_SyncdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="syncd")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """syncd keeps folders of images mirrored into an image-search gallery.

    Every command exits 2 on a usage or config error, with one line saying what is wrong.
    """
    _setup_logging(verbose)


@cli.group()
def gallery() -> None:
    """The local gallery server that speaks the image-search API."""


@gallery.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8601,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--data",
    "data_dir",
    default="./gallery-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding the gallery's SQLite store.",
)
@click.option(
    "--api-key",
    default="",
    envvar="SYNCD_GALLERY_API_KEY",
    help="API Key clients must present ('' = any).",
)
@click.option(
    "--secret-key",
    default="",
    envvar="SYNCD_GALLERY_SECRET_KEY",
    help="Secret Key clients must present ('' = any).",
)
@click.option(
    "--delete-latency",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a deleted item stays searchable and blocks a re-add.",
)
@click.option("--threads", type=click.IntRange(1), help="Threads running calls [default: 8].")
@click.option(
    "--connection-limit",
    type=click.IntRange(1),
    help="Connections open at once, idle ones included [default: 500].",
)
@click.option(
    "--channel-timeout",
    type=click.IntRange(1),
    help="Seconds a silent connection stays open [default: 30].",
)
def gallery_serve(
    host: str,
    port: int,
    data_dir: Path,
    api_key: str,
    secret_key: str,
    delete_latency: float,
    threads: int | None,
    connection_limit: int | None,
    channel_timeout: int | None,
) -> None:
    """Run the local gallery server until SIGTERM/SIGINT.

    Exit: 0 stopped by a signal, 2 usage error.
    """
    from syncd.gallery.server import serve_forever

    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a service: say where it serves, and when it stops

    serve_forever(
        data_dir=data_dir,
        host=host,
        port=port,
        api_key=api_key,
        secret_key=secret_key,
        delete_latency=delete_latency,
        threads=threads,
        connection_limit=connection_limit,
        channel_timeout=channel_timeout,
    )


# -- config and ledger, shared by the commands that need them -------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable

    from click._termui_impl import ProgressBar

    from syncd.app.dryrun import DryRun
    from syncd.app.reconcile import Progress, ReconcileResult, ScanResult, SyncReport
    from syncd.app.status import PlanEntry, StatusReport
    from syncd.app.walks import WalkAhead
    from syncd.config import Config, LibraryConfig
    from syncd.health import LibraryHealth

config_option = click.option(
    "-c",
    "--config",
    "config_file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $SYNCD_CONFIG, else /etc/syncd/config.toml).",
)


def load_config_or_exit(path: Path | None) -> Config:
    """The validated config, or exit 2 with the one line saying what is wrong."""
    from syncd.config import load_config
    from syncd.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None


def _import_ledger_layer(config: Config, use_case: str) -> None:
    """Import ``use_case`` and the database driver of ``config``'s ledger kept out of garbage
    collection for good (``syncd.speedups``): a command that reads the ledger starts faster."""
    import_for_good(use_case)
    if not config.ledger.url:  # SQLAlchemy imports its SQLite dialect at the first connect
        import_for_good("sqlalchemy.dialects.sqlite")


#: the health reasons that say a library's root is no folder of files to sync (a typo in root)
_ROOT_PROBLEMS = ("root_missing", "root_unreadable", "root_empty", "root_unmounted")


def _warn_about_roots(config: Config, names: tuple[str, ...]) -> None:
    """One line on stderr per library (of ``names``, or all) whose root is missing, not a
    folder, unreadable or empty: a typo in ``root`` would otherwise go unnoticed."""
    from syncd.health import inspect_root, root_reasons

    for lib in config.libraries:
        if names and lib.name not in names:
            continue
        for reason in root_reasons(inspect_root(lib.root), None):
            if reason.code not in config.health.accept:
                click.echo(f"warning: library {lib.name}: {reason.detail}", err=True)


def _check_library_names(config: Config, names: tuple[str, ...]) -> None:
    known = [lib.name for lib in config.libraries]
    for name in names:
        if name not in known:
            known_names = ", ".join(known)
            click.echo(f"--library: no library {name!r} in the config ({known_names})", err=True)
            raise SystemExit(EXIT_USAGE)


# -- reconcile and status ---------------------------------------------------------------------


@cli.command("reconcile")
@config_option
@click.option("--dry-run", is_flag=True, help="Scan and print the plan; call nothing.")
@click.option(
    "--library", "libraries", multiple=True, metavar="NAME", help="Only this library (repeatable)."
)
@click.option(
    "--allow-mass-delete", is_flag=True, help="Let deletes held by the mass-delete safety go."
)
def reconcile_command(
    config_file: Path | None, dry_run: bool, libraries: tuple[str, ...], allow_mass_delete: bool
) -> None:
    """Scan the libraries, then sync until nothing is due (--dry-run: print the plan).

    Exit: 0 synced, 1 some files failed or still retrying after errors, or the daily budget
    is spent, 2 config or ledger error, 3 a fatal API condition.
    """
    config = load_config_or_exit(config_file)
    _check_library_names(config, libraries)
    from syncd.app.walks import start_walks

    # the walk runs in a child while this process imports the ledger's modules (a fast start)
    with start_walks(config, libraries) as walks:
        _import_ledger_layer(config, "syncd.app.dryrun" if dry_run else "syncd.app.reconcile")
        if not dry_run:
            raise SystemExit(_reconcile_and_sync(config, libraries, allow_mass_delete, walks))
        from syncd.app.dryrun import dry_run as scan_dry_run
        from syncd.app.errors import ConfigError, LedgerError

        try:
            result = scan_dry_run(
                config,
                libraries,
                allow_mass_delete=allow_mass_delete,
                progress=_progress_bar if sys.stderr.isatty() else None,
                walks=walks,
            )
        except (LedgerError, ConfigError) as exc:
            click.echo(str(exc), err=True)
            raise SystemExit(EXIT_USAGE) from None
    _print_dry_run(result, config)
    _warn_about_roots(config, libraries)


@cli.command("status")
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object (keys in docs/status.schema.json): as_of, libraries, paused, fatal, "
    "unconfigured, unsettled_adds, hosts, queue, budget, conditions, rate, health; failed "
    "with --failed.",
)
@click.option("--failed", is_flag=True, help="Also list files not synced, with the reason.")
def status_command(config_file: Path | None, as_json: bool, failed: bool) -> None:
    """Per library: files, items, synced, pending, failed, held deletes; pause or stop state.

    --json prints one object, the console's /api/status document; docs/status.schema.json
    (a JSON Schema) describes each of its keys.

    Exit: 0, 2 config or ledger error. A library root that is missing, unreadable or empty
    is warned about on stderr.
    """
    import json
    import time

    config = load_config_or_exit(config_file)
    _import_ledger_layer(config, "syncd.app.status")
    from syncd.app.errors import LedgerError
    from syncd.app.status import read_status

    try:
        status = read_status(config, failed=failed)
    except LedgerError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    for health in status.healths:
        for reason in health.reasons:
            if reason.code in _ROOT_PROBLEMS and not reason.accepted:
                click.echo(f"warning: library {health.library}: {reason.detail}", err=True)
    if as_json:
        click.echo(json.dumps(status.document(), ensure_ascii=False, indent=2))
        return
    _print_status(status.report, status.failures)
    click.echo(f"rate: {config.api.rates.describe(time.time())}")
    _print_health(status.healths)
    if status.unsettled_adds:
        click.echo(_unsettled_line(status.unsettled_adds))


def _progress_bar(library: LibraryConfig, known_files: int) -> Progress:
    bar = click.progressbar(
        length=max(known_files, 1), label=f"scanning {library.name}", file=sys.stderr
    )
    bar.render_progress()
    return _Bar(bar)


class _Bar:
    def __init__(self, bar: ProgressBar[int]) -> None:
        self.bar = bar

    def update(self, entries: int) -> None:
        self.bar.update(entries)

    def finish(self) -> None:
        self.bar.render_finish()


def print_scan(scan: ScanResult) -> None:
    """One line per scanned library, then the first skipped paths (shared by reconcile)."""
    from syncd.paths.relpath import printable_relpath

    for lib in scan.libraries:
        head = f"library {lib.name} ({lib.gallery}):"
        if lib.unavailable:
            click.echo(f"{head} {lib.unavailable}: nothing will be deleted")
            continue
        line = (
            f"{head} {_count(lib.seen, 'file')}: {lib.new + lib.changed} new or changed, "
            f"{lib.unchanged} unchanged, {lib.vanished} vanished"
        )
        for count, what in (
            (lib.held, "deletes held (mass vanish)"),
            (lib.released, "held deletes let go"),
            (lib.skipped_count, "skipped"),
            (lib.settling, "still being written"),
        ):
            if count:
                line += f", {count} {what}"
        click.echo(line)
        for skipped in lib.skipped[:10]:
            click.echo(f"  skipped {printable_relpath(skipped.relpath)}: {skipped.reason}")


def _print_dry_run(result: DryRun, config: Config) -> None:
    from syncd.paths.relpath import printable_relpath

    print_scan(result.scan)
    plan = result.plan
    sections = [
        ("adds", plan.adds),
        ("updates", plan.updates),
        ("deletes", plan.deletes),
        ("held deletes", plan.held_deletes),
        ("vanished, waiting for delete_grace", plan.waiting),
        ("failures", plan.failures),
    ]
    counts = ", ".join(f"{part.count} {name.split(',')[0]}" for name, part in sections)
    click.echo(f"plan: {counts}")
    _print_plan_cost(plan.adds.count, plan.updates.count, plan.deletes.count, config)
    for name, part in sections:
        if not part.count:
            continue
        click.echo(f"{name} ({part.count}):")
        for entry in part.first:
            detail = f": {entry.detail}" if entry.detail else ""
            click.echo(f"  {entry.library}/{printable_relpath(entry.path)}{detail}")
        if part.count > len(part.first):
            click.echo(f"  … and {part.count - len(part.first)} more")
    if plan.held_deletes.count:
        if result.would_release:
            click.echo(f"--allow-mass-delete would let {plan.held_deletes.count} held deletes go")
        else:
            click.echo("held deletes go only with `syncd reconcile --allow-mass-delete`")


def _print_plan_cost(adds: int, updates: int, deletes: int, config: Config) -> None:
    """The calls a plan needs by operation, how long they take at ``api.qps``, and how many
    days at ``api.daily_budget`` when one is set."""
    import time

    from syncd.estimate import CallPlan, delete_calls, for_people

    cost = CallPlan(adds, updates, deletes, delete_calls(deletes))
    if not cost.calls:
        click.echo("calls: none")
        return
    line = (
        f"calls: {cost.calls} ({cost.adds} adds, {cost.updates} updates, "
        f"{cost.delete_calls} delete calls); about "
        f"{for_people(cost.seconds(config.api.rates.rate_at(time.time())))} "
        + (f"at {config.api.rates.describe(time.time())} (api.qps_schedule)"
           if config.api.qps_schedule else f"at api.qps = {config.api.qps:g}")
    )
    if config.api.daily_budget:
        days = cost.days(config.api.daily_budget)
        line += f"; {days} day{'s' if days != 1 else ''} at api.daily_budget = {config.api.daily_budget}"
    click.echo(line)


def _print_status(report: StatusReport, failures: list[PlanEntry] | None) -> None:
    from syncd.paths.relpath import printable_relpath

    head = ("LIBRARY", "GALLERY", "FILES", "ITEMS", "SYNCED", "PENDING", "FAILED", "HELD")
    rows = [head] + [
        (
            s.name,
            s.gallery,
            str(s.files),
            str(s.items),
            str(s.synced),
            str(s.pending),
            str(s.failed),
            str(s.held_deletes),
        )
        for s in report.libraries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    if report.paused:
        click.echo(f"paused: {report.paused.get('reason', report.paused)}")
    for gallery, stop in (report.fatal or {}).items():
        # the reason already names the gallery ("gallery similar: not initialized ...")
        click.echo(f"stopped: {stop.get('reason', gallery)}")
    for gone in report.unconfigured:
        click.echo(
            f"not in the config: library {gone.name} ({gone.gallery}), {gone.files} files; "
            f"its {gone.items} items stay in the gallery and are no longer synced"
        )
    _print_queue(report)
    _print_hosts(report)
    if failures is not None:
        click.echo(f"failed files ({len(failures)}):")
        for entry in failures:
            click.echo(f"  {entry.library}/{printable_relpath(entry.path)}: {entry.detail}")


def _print_health(healths: list[LibraryHealth]) -> None:
    """How `syncd run` watches each root, then one line per reason a library is not healthy
    ("degraded: ...", or "accepted: ..." for what health.accept lists)."""
    watched = [f"{h.library} {h.watch.mode}" for h in healths if h.watch is not None]
    if watched:
        click.echo("watching: " + ", ".join(watched))
    for health in healths:
        for line in health.lines():
            click.echo(f"degraded: {line}")
        for line in health.lines(accepted=True):
            click.echo(f"accepted: {line}")


def _print_queue(report: StatusReport) -> None:
    """The calls queued and when they should be done; the daily budget when set."""
    from syncd.estimate import for_people

    queue, budget = report.queue, report.budget
    if queue is not None and queue.calls and queue.rate > 0:
        how = "the recent rate" if queue.rate_from == "recent" else "api.qps"
        click.echo(
            f"queued: {queue.calls} calls ({queue.adds} adds, {queue.updates} updates, "
            f"{queue.delete_calls} delete calls for {queue.deletes} items); done in about "
            f"{for_people(queue.calls / queue.rate)} at {queue.rate:.1f} calls/s ({how}), "
            f"by {queue.done_at}"
        )
    if budget is not None:
        click.echo(
            f"budget: {budget.used} of {budget.limit} calls used today; resets at "
            f"{budget.resets_at}"
        )


def _print_hosts(report: StatusReport) -> None:
    """One line per host sharing the ledger (docs/rules.md, Several hosts)."""
    import time

    now = time.time()
    for host in report.hosts:
        seen = f"seen {max(0.0, now - host.last_seen):.0f} s ago" if host.last_seen else "never seen"
        owned = ", ".join(host.libraries) or "none"
        click.echo(
            f"host {host.name}: {seen}; libraries {owned}; "
            f"{host.calls_last_minute} calls in the last minute"
        )


# -- the sync engine: reconcile (syncing), retry, search, check --------------------------------


def _reconcile_and_sync(
    config: Config, libraries: tuple[str, ...], allow_mass_delete: bool, walks: WalkAhead
) -> int:
    """Scan, sync until nothing is due, print what happened; the exit code: 0 synced,
    1 some items failed or still retrying after errors, 2 usage, 3 a fatal API condition."""
    from syncd.app.errors import ConfigError, LedgerBusy, LedgerError, SyncdError
    from syncd.app.reconcile import reconcile

    try:
        result = reconcile(
            config,
            libraries,
            allow_mass_delete=allow_mass_delete,
            progress=_progress_bar if sys.stderr.isatty() else None,
            sync_progress=_sync_progress_bar if sys.stderr.isatty() else None,
            walks=walks,
        )
    except (ConfigError, LedgerError, LedgerBusy) as exc:
        click.echo(str(exc), err=True)
        return EXIT_USAGE
    except SyncdError as exc:
        click.echo(str(exc), err=True)
        return EXIT_API
    _print_reconcile(result)
    _warn_about_roots(config, libraries)
    if result.budget_spent is not None:
        # the operator's own cap, not an API condition: the rest goes tomorrow
        click.echo(result.budget_spent, err=True)
        return EXIT_FAILED
    if result.fatal is not None:
        click.echo(result.fatal, err=True)
        return EXIT_API
    # items still retrying after errors are not synced: a script must not read that as success
    retrying = result.sync is not None and (result.sync.retrying or result.sync.lost_adds)
    return EXIT_FAILED if result.failures.count or retrying else EXIT_OK


def _sync_progress_bar(due: int) -> Callable[[int], None]:
    bar = click.progressbar(length=max(due, 1), label="syncing", file=sys.stderr, show_eta=True)
    shown = [0]

    def tell(settled: int) -> None:
        bar.update(max(0, min(settled, due) - shown[0]))
        shown[0] = max(shown[0], min(settled, due))
        if shown[0] >= due:
            bar.render_finish()

    bar.render_progress()
    return tell


def _print_reconcile(result: ReconcileResult) -> None:
    from syncd.paths.relpath import printable_relpath

    print_scan(result.scan)
    if any(lib.held for lib in result.scan.libraries):
        click.echo("held deletes stay held: --allow-mass-delete lets them go")
    _print_sync(result.sync)
    failures = result.failures
    if failures.count:
        click.echo(f"failed: {_count(failures.count, 'file')}")
        for entry in failures.first:
            click.echo(f"  {entry.library}/{printable_relpath(entry.path)}: {entry.detail}")
        if failures.count > len(failures.first):
            more = failures.count - len(failures.first)
            click.echo(f"  … and {more} more (syncd status --failed)")


def _print_sync(sync: SyncReport | None) -> None:
    """What the sync did and what waits; None: nothing was due, so no call was made."""
    calls_made = sync.calls if sync is not None else {}
    by_op: dict[str, int] = {}
    errors = 0
    for (op, answer), n in calls_made.items():
        by_op[op] = by_op.get(op, 0) + n
        # "the gallery holds it already" is how an adoption starts, not an error
        errors += n if answer not in ("ok", "ItemExistsError") else 0
    ops = ", ".join(
        f"{op} {by_op[op]}" for op in ("add", "search", "update", "delete") if op in by_op
    )
    calls = _count(sum(calls_made.values()), "API call") + (f" ({ops})" if ops else "")
    if errors:
        calls += f", {errors} answered with an error"
    added, adopted, updated, deleted = (
        (sync.added, sync.adopted, sync.updated, sync.deleted) if sync is not None else (0, 0, 0, 0)
    )
    click.echo(
        f"synced: {added} added, {adopted} adopted, {updated} updated, {deleted} deleted; {calls}"
    )
    if sync is None:
        return
    from syncd.app.reconcile import utc_text  # imported by the reconcile already

    if sync.pending:
        when = f", next at {utc_text(sync.next_due)}" if sync.next_due is not None else ""
        waiting = _count(sync.pending, "call")
        click.echo(f"waiting: {waiting} (backoff, deletion latency or stop){when}")
    if sync.vanished_waiting:
        when = f" until {utc_text(sync.vanished_due)}" if sync.vanished_due is not None else ""
        files = _count(sync.vanished_waiting, "file")
        wait = "waits" if sync.vanished_waiting == 1 else "wait"
        click.echo(f"vanished: {files} {wait} for watch.delete_grace{when}")
    if sync.lost_adds:
        click.echo(_unsettled_line(sync.lost_adds))


def _count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _unsettled_line(adds: int) -> str:
    return (
        f"unsettled: {_count(adds, 'add')} whose answers were lost; the next run looks for what "
        "they left in the gallery"
    )


@cli.command("retry")
@config_option
@click.option(
    "--library", "libraries", multiple=True, metavar="NAME", help="Only this library (repeatable)."
)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def retry_command(
    config_file: Path | None, libraries: tuple[str, ...], paths: tuple[Path, ...]
) -> None:
    """Queue failed files again (all, a library's, or those at or under PATHs).

    Exit: 0, 2 config or ledger error.
    """
    from syncd.app.errors import ConfigError, LedgerError
    from syncd.app.retry import retry_failures

    config = load_config_or_exit(config_file)
    _check_library_names(config, libraries)
    try:
        result = retry_failures(config, libraries, paths)
    except (ConfigError, LedgerError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    click.echo(
        f"queued again: {result.items} failed items, {result.waiting} items waiting to retry "
        f"after errors, {result.files} refused files to read again"
    )
    for what in result.lifted:
        click.echo(f"lifted {what}: calls are tried again")
    if result.items or result.waiting or result.files or result.lifted:
        click.echo("the running service or the next `syncd reconcile` syncs them")


@cli.command("search")
@config_option
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--library", default=None, metavar="NAME", help="Only this library's gallery and files."
)
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="Hits to show."
)
@click.option(
    "--min-score",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    metavar="SCORE",
    help="Leave out hits scoring below SCORE (0..1).",
)
@click.option(
    "--json", "as_json", is_flag=True, help='A JSON list of {"score","cont_sign","brief","paths"}.'
)
def search_command(
    config_file: Path | None,
    image: Path,
    library: str | None,
    top: int,
    min_score: float,
    as_json: bool,
) -> None:
    """Search the gallery with a local image; each hit with its score, and each of its
    local files with its library: SCORE  LIBRARY  PATH.

    Exit: 0 hits found, 1 no hit (none at --min-score or above), 2 config error or IMAGE
    not an image, 3 API error.
    """
    import json

    from syncd.app.errors import ApiError, ConfigError, SyncdError
    from syncd.app.search import ImageRejected, search_image

    config = load_config_or_exit(config_file)
    _check_library_names(config, (library,) if library else ())
    try:
        found = search_image(config, image, library, top, min_score)
    except ImageRejected as exc:
        click.echo(f"{image}: {exc.reason}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except OSError as exc:
        click.echo(f"{image}: cannot read: {exc.strerror or exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    except (ApiError, SyncdError) as exc:
        click.echo(f"search failed: {exc}", err=True)
        raise SystemExit(EXIT_API) from None
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in found], ensure_ascii=False, indent=2))
    else:
        width = max((len(name) for hit in found for name in hit.libraries), default=1)
        for hit in found:
            where = list(zip(hit.libraries, hit.paths, strict=True))
            for name, path in where or [("-", f"(not a file syncd knows) {hit.brief}")]:
                click.echo(f"{hit.score:.3f}  {name:<{width}}  {path}")
    if not found:
        if not as_json:
            click.echo(f"no hit scoring {min_score:g} or more" if min_score else "no hit", err=True)
        raise SystemExit(EXIT_FAILED)


@cli.command("check")
@config_option
def check_command(config_file: Path | None) -> None:
    """Validate the config, check each library's root, reach the endpoint, obtain a token,
    open the ledger.

    Exit: 0 all ok, 2 config, library root or ledger problem, 3 API problem.
    """
    from syncd.app.check import check_setup

    config = load_config_or_exit(config_file)
    lines, code = check_setup(config)
    for line in lines:
        click.echo(f"{'ok' if line.ok else 'FAILED'}  {line.what}: {line.detail}", err=not line.ok)
    raise SystemExit(code)


@cli.command("run")
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text (for journald) or one JSON object per line.",
)
@click.pass_context
def run_command(ctx: click.Context, config_file: Path | None, log_format: str) -> None:
    """Reconcile, then watch and sync until SIGTERM/SIGINT; SIGHUP reloads the config.

    Exit: 0 stopped by a signal, 1 could not start (a listener's address taken) or a part of
    the service stopped, 2 config error.
    """
    from syncd.daemon import run

    verbose = bool(ctx.find_root().params.get("verbose", False))
    ctx.exit(run(config_file, "json" if log_format == "json" else "text", verbose))


@cli.command("console")
@config_option
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Address to serve on (default: console.listen, else 127.0.0.1:8765).",
)
def console_command(config_file: Path | None, listen: str | None) -> None:
    """Serve the web console alone until SIGTERM/SIGINT (for hosts that sync by reconcile).

    Exit: 0 stopped by a signal, 2 config error or the address cannot be listened on.
    """
    from dataclasses import replace

    from syncd.config import check_listen, is_loopback
    from syncd.console import serve_until_signal
    from syncd.errors import ConfigError

    config = load_config_or_exit(config_file)
    address = listen or config.console.listen or "127.0.0.1:8765"
    try:
        check_listen(address, "--listen", any_port=True)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    if not config.console.password and not is_loopback(address):
        click.echo(
            "console.password_file: required when the console listens beyond loopback "
            "(or $SYNCD_CONSOLE_PASSWORD)",
            err=True,
        )
        raise SystemExit(EXIT_USAGE)
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a service: say where it serves, and when it stops
    config = replace(config, console=replace(config.console, listen=address))
    try:
        serve_until_signal(config)
    except OSError as exc:
        key = "--listen" if listen else "console.listen"
        click.echo(f"cannot listen on {address} for {key}: {exc.strerror or exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None


@cli.group("ledger")
def ledger_group() -> None:
    """The ledger itself: move it to PostgreSQL, release a host that is gone."""


@ledger_group.command("migrate")
@config_option
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="The empty PostgreSQL database, e.g. postgresql://syncd@db.example/syncd.",
)
@click.option(
    "--password-file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the database password (else $SYNCD_LEDGER_PASSWORD, else libpq's "
    "PGPASSFILE or ~/.pgpass).",
)
def ledger_migrate_command(config_file: Path | None, url: str, password_file: Path | None) -> None:
    """Copy this host's SQLite ledger into an empty PostgreSQL ledger, in one transaction,
    then say how to switch the config to it.

    Exit: 0 copied, 2 config, ledger or database error.
    """
    import os

    from syncd.app.errors import ConfigError
    from syncd.app.ledger import LedgerBusy, MigrateError, check_migrate_source, migrate_ledger
    from syncd.config import LEDGER_PASSWORD_ENV, check_ledger_url

    config = load_config_or_exit(config_file)
    try:
        source = check_migrate_source(config)
    except MigrateError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    try:  # the checks the config will make of it
        check_ledger_url(url, "--to")
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    password = os.environ.get(LEDGER_PASSWORD_ENV) or None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").strip("\r\n") or None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            click.echo(f"--password-file: cannot read {password_file}: {reason}", err=True)
            raise SystemExit(EXIT_USAGE) from None
    try:
        result = migrate_ledger(config, url, password)
    except (LedgerBusy, MigrateError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    counts = ", ".join(f"{table.name} {table.rows}" for table in result.tables if table.rows)
    click.echo(f"copied {result.rows} rows into {result.target} ({counts})")
    where = str(config.source) if config.source is not None else "the config file"
    click.echo(f"now switch this host to it: in {where}, under [ledger], replace")
    click.echo(f'  path = "{source}"')
    click.echo("with")
    click.echo(f'  url = "{url}"')
    click.echo(f'  state_dir = "{source.parent}"')
    if password_file is not None:
        click.echo(f'  password_file = "{password_file.resolve()}"')
    click.echo(f"{source} stays as it was: keep it as a backup until the new ledger has run a while")


@ledger_group.command("release-host")
@config_option
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Release it even though it was seen in the last minute."
)
def ledger_release_host_command(config_file: Path | None, name: str, force: bool) -> None:
    """Forget host NAME (gone for good): its libraries go to the next host naming them.

    Exit: 0 released, 2 config or ledger error.
    """
    from syncd.app.errors import ConfigError, LedgerError
    from syncd.app.ledger import release_host

    config = load_config_or_exit(config_file)
    try:
        libraries = release_host(config, name, force=force)
    except (LedgerError, ConfigError) as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_USAGE) from None
    owned = ", ".join(libraries) or "none"
    click.echo(f"host {name} released; its libraries ({owned}) go to the next host naming them")


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
