"""The API call's form body, read as werkzeug reads it, without its per-character unquote.

An add's form body is mostly the image's base64 text, whose ``+``, ``/`` and ``=`` arrive
percent-encoded (3 to 5 MB of them for a phone photo). werkzeug decodes a urlencoded body
with :func:`urllib.parse.parse_qsl`, a Python loop over every escape: about 0.05 s of one
core a photo, with the interpreter lock held. A value whose only escapes are those three is
decoded here by three byte replaces; any other value goes through ``parse_qsl`` as
werkzeug's would, so the two read every body alike (tests/gallery/test_form.py compares
them on random bodies).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from werkzeug.wrappers import Request

#: the escapes of base64's three non-alphanumeric characters, upper case then lower case
_BASE64_ESCAPES = (
    ((b"%2B", b"+"), (b"%2F", b"/"), (b"%3D", b"=")),
    ((b"%2b", b"+"), (b"%2f", b"/"), (b"%3d", b"=")),
)
_FORM_TYPE = "application/x-www-form-urlencoded"


def form_params(request: Request) -> dict[str, str]:
    """The request's form fields, the first value of each name (as ``request.form[name]``
    gives it). Raises werkzeug's HTTPException for a body over ``max_content_length``."""
    if request.mimetype != _FORM_TYPE:
        return {key: request.form[key] for key in request.form}
    return parse_form(request.get_data(cache=False))


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of a urlencoded ``body``, the first value of each name; none when the
    body is not UTF-8 (werkzeug's parser is silent about it too).

    Bytes throughout: every pass over a photo's text holds the interpreter lock, and a
    bytes pass is a ``memchr`` where a text one decodes first.
    """
    params: dict[str, str] = {}
    try:
        for piece in body.split(b"&"):
            if not piece:
                continue
            name, _, value = piece.partition(b"=")
            plain_name, plain_value = _plain(name), _plain(value)
            if plain_name is not None and plain_value is not None:
                params.setdefault(plain_name, plain_value)
                continue
            pairs = parse_qsl(piece.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
            for key, decoded in pairs:
                params.setdefault(key, decoded)
    except UnicodeDecodeError:
        return {}
    return params


def _plain(part: bytes) -> str | None:
    """``part`` decoded when its only escapes are base64's (None: it needs the full decode).

    A replaced escape yields no ``%``, so once none is left every ``%`` began one of them.
    """
    if b"+" in part:
        part = part.replace(b"+", b" ")
    for escapes in _BASE64_ESCAPES:
        if b"%" not in part:
            break
        for escape, char in escapes:
            part = part.replace(escape, char)
    else:
        if b"%" in part:
            return None
    return part.decode()
