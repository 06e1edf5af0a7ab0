"""The files the console serves: thumbnails of files the ledger knows (by id, never by a
path from the request) and the static files shipped in the package (by name)."""

from __future__ import annotations

import mimetypes

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from syncd.console.context import Console
from syncd.console.thumbs import NotAnImage, NoThumbnail, ThumbnailCache
from syncd.console.views import Handler
from syncd.console.web import Access, Refused, path_arg


def thumb(console: Console, request: Request, access: Access) -> Response:
    location, lib = console.located(path_arg(request, "raw"))
    etag = ThumbnailCache.etag_of(location)
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        try:
            thumbnail = console.thumbs.get(location, lib.root)
        except NotAnImage:
            response = static_file(console, request, "no-preview.svg")
            response.headers["X-Syncd-Preview"] = "none"
            return response
        except NoThumbnail as exc:
            raise Refused(404, f"no preview: {exc}") from None
        response = Response(thumbnail.data, mimetype="image/jpeg")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def static(console: Console, request: Request, access: Access) -> Response:
    return static_file(console, request, path_arg(request, "name"))


def static_file(console: Console, request: Request, name: str) -> Response:
    """The static file ``name`` shipped in the package; 404 for any other name."""
    path = console.static.get(name)
    if path is None:
        raise NotFound()
    data = path.read_bytes()
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(data, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(f"{len(data)}-{int(path.stat().st_mtime)}")
    return response.make_conditional(request)


HANDLERS: dict[str, Handler] = {"thumb": thumb, "static": static}
