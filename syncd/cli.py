"""Command line (SPEC §6). Commands parse, call one stage, print: no logic of their own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from syncd import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="syncd")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """syncd keeps folders of images mirrored into an image-search gallery."""
    _setup_logging(verbose)


@cli.group()
def gallery() -> None:
    """The local gallery server that speaks the image-search API."""


@gallery.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8601, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data",
    "data_dir",
    default="./gallery-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding the gallery's SQLite store.",
)
@click.option("--api-key", default="", envvar="SYNCD_GALLERY_API_KEY", help="API Key clients must present ('' = any).")
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
def gallery_serve(
    host: str, port: int, data_dir: Path, api_key: str, secret_key: str, delete_latency: float
) -> None:
    """Run the local gallery server until SIGTERM/SIGINT."""
    from syncd.gallery.server import serve_forever

    serve_forever(
        data_dir=data_dir,
        host=host,
        port=port,
        api_key=api_key,
        secret_key=secret_key,
        delete_latency=delete_latency,
    )


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
