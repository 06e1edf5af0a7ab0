"""The search page and its two answers: ``/api/search`` (``syncd search --json``) and
``/search/hits`` (the same hits with the ids of their files, for thumbnails)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from syncd.app.browse import files_of_hits
from syncd.console.context import Console
from syncd.console.views import Handler
from syncd.console.web import Access, Refused, json_response
from syncd.paths.relpath import printable_relpath


def search_page(console: Console, request: Request, access: Access) -> Response:
    return console.pages.page("search.html", access=access, page="search")


def api_search(console: Console, request: Request, access: Access) -> Response:
    found, _ = _search(console, request, with_files=False)
    return json_response([hit.as_dict() for hit in found])


def search_hits(console: Console, request: Request, access: Access) -> Response:
    found, files = _search(console, request, with_files=True)
    hits = []
    for hit, refs in zip(found, files, strict=True):
        entry = hit.as_dict()
        entry["files"] = refs
        hits.append(entry)
    return json_response(hits)


def _search(console: Console, request: Request, with_files: bool) -> tuple[list[Any], list[Any]]:
    """``syncd search`` with the uploaded ``image``; with the ids of the hits' files."""
    from syncd.app.errors import ApiError, ConfigError, SyncdError
    from syncd.app.search import ImageRejected, search_image

    try:
        upload = request.files.get("image")
        library = request.form.get("library") or None
        top_text = request.form.get("top") or "10"
        min_score_text = request.form.get("min_score") or "0"
    except ValueError:
        raise Refused(400, "not a readable multipart form") from None
    if upload is None or not upload.filename and not upload.content_length:
        raise Refused(400, "no image: send it in the multipart field 'image'")
    if library is not None and console.library(library) is None:
        raise Refused(400, "no such library in the config")
    if not top_text.isdigit() or not 1 <= int(top_text) <= 1000:
        raise Refused(400, "top: expected an integer 1..1000")
    min_score = _score(min_score_text)
    with tempfile.TemporaryDirectory(prefix="syncd-console-") as folder:
        image = Path(folder) / "image"
        upload.save(str(image))
        if image.stat().st_size == 0:
            raise Refused(400, "the image is empty")
        try:
            found = search_image(console.config, image, library, int(top_text), min_score)
        except ImageRejected as exc:
            # the reason says what is wrong ("not an image (…)"): say it once
            raise Refused(400, f"the gallery cannot take this file: {exc.reason}") from None
        except ConfigError as exc:
            raise Refused(409, str(exc).splitlines()[0]) from None
        except (ApiError, SyncdError) as exc:
            raise Refused(502, f"search failed: {str(exc).splitlines()[0]}") from None
    files: list[Any] = []
    if with_files:
        files = _files_of(console, found, library)
    return found, files


def _files_of(
    console: Console, found: list[Any], library: str | None
) -> list[list[dict[str, Any]]]:
    """The files (id, library, path) of each hit, in this host's libraries."""
    names = [library] if library else [lib.name for lib in console.config.libraries]
    refs = files_of_hits(console.reader, [(hit.gallery, hit.cont_sign) for hit in found], names)
    return [
        [
            {"id": ref.id, "library": ref.library, "path": printable_relpath(_shown(console, ref))}
            for ref in of_hit
        ]
        for of_hit in refs
    ]


def _shown(console: Console, ref: Any) -> str:
    lib = console.library(ref.library)
    return str(Path(os.path.abspath(lib.root)) / ref.relpath) if lib else ref.relpath


def _score(raw: str) -> float:
    """A search's ``min_score``: a number 0..1; any other is refused with 400."""
    try:
        score = float(raw)
    except ValueError:
        score = -1.0
    if not 0.0 <= score <= 1.0:  # NaN too
        raise Refused(400, "min_score: expected a number 0..1")
    return score


HANDLERS: dict[str, Handler] = {
    "search": search_page,
    "api_search": api_search,
    "search_hits": search_hits,
}
