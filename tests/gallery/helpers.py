"""Small test clients of the local gallery over real HTTP: token mode and bce-auth-v1.

Written from the API document and the BCE authentication spec, independent of both
the server and syncd's own client, so the tests check the server against the spec.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from syncd.api.baidu.galleries import GALLERIES, TOKEN_PATH
from syncd.gallery.server import GalleryServer

API_KEY = "test-ak"
SECRET_KEY = "test-sk"


def b64(data: bytes) -> str:
    """Base64 text of ``data`` as the API takes it (no data: header)."""
    return base64.b64encode(data).decode("ascii")


def bce_timestamp(when: datetime.datetime | None = None) -> str:
    when = when or datetime.datetime.now(datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def bce_authorization(
    ak: str,
    sk: str,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    timestamp: str,
    expiration: int = 1800,
) -> str:
    """The ``authorization`` header of the BCE spec signing ``headers`` (names as given)."""
    prefix = f"bce-auth-v1/{ak}/{timestamp}/{expiration}"
    signing_key = hmac.new(sk.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    canonical_query = "&".join(
        sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    )
    canonical_headers = "\n".join(
        sorted(
            f"{quote(name.lower().strip(), safe='')}:{quote(value.strip(), safe='')}"
            for name, value in headers.items()
        )
    )
    canonical = "\n".join((method, quote(path, safe="/"), canonical_query, canonical_headers))
    signature = hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    signed = ";".join(name.lower() for name in headers)
    return f"{prefix}/{signed}/{signature}"


def get_token(server: GalleryServer, ak: str = API_KEY, sk: str = SECRET_KEY) -> str:
    answer = requests.get(
        server.url + TOKEN_PATH,
        params={"grant_type": "client_credentials", "client_id": ak, "client_secret": sk},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert isinstance(token, str)
    return token


@dataclass
class ApiClient:
    """Calls the gallery's operations with plain requests, in ``auth`` mode."""

    server: GalleryServer
    auth: str = "token"
    ak: str = API_KEY
    sk: str = SECRET_KEY
    #: send Host with the port (True) or without it, as the official SDK does (False)
    host_with_port: bool = True
    session: requests.Session = field(default_factory=requests.Session)
    token: str = ""

    def post(self, path: str, data: dict[str, str], timeout: float = 30) -> requests.Response:
        """POST a form to ``path`` with credentials; the raw answer."""
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        if self.auth == "token":
            if not self.token:
                self.token = get_token(self.server, self.ak, self.sk)
            query["access_token"] = self.token
        else:
            netloc = urlsplit(self.server.url).netloc
            host = netloc if self.host_with_port else netloc.rsplit(":", 1)[0]
            signed = {"host": host, "x-bce-date": bce_timestamp()}
            headers.update(signed)
            headers["authorization"] = bce_authorization(
                self.ak, self.sk, "POST", path, query, signed, signed["x-bce-date"]
            )
        return self.session.post(
            self.server.url + path, params=query, data=data, headers=headers, timeout=timeout
        )

    def call(self, gallery: str, op: str, **params: str) -> dict[str, Any]:
        """One operation of one gallery; the JSON answer (error or result)."""
        answer = self.post(GALLERIES[gallery].path(op), params)  # type: ignore[index, arg-type]
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body, dict)
        return body

    def ok(self, gallery: str, op: str, **params: str) -> dict[str, Any]:
        """Like call, asserting the answer is a result."""
        body = self.call(gallery, op, **params)
        assert "error_code" not in body, body
        assert isinstance(body["log_id"], int)
        return body

    def error(self, gallery: str, op: str, **params: str) -> int:
        """Like call, asserting the answer is an error; its code."""
        body = self.call(gallery, op, **params)
        assert "error_code" in body, body
        assert isinstance(body["error_msg"], str) and body["error_msg"]
        code = body["error_code"]
        assert isinstance(code, int)
        return code


def tag_params(gallery: str, tag1: int | None = None, tag2: int | None = None) -> dict[str, str]:
    """The request fields that set (tag1, tag2) in ``gallery``'s own tag style."""
    if GALLERIES[gallery].tag_style == "class_id":  # type: ignore[index]
        params = {}
        if tag1 is not None:
            params["class_id1"] = str(tag1)
        if tag2 is not None:
            params["class_id2"] = str(tag2)
        return params
    tags = [str(t) for t in (tag1, tag2) if t is not None]
    return {"tags": ",".join(tags)} if tags else {}


def live_items(server: GalleryServer, gallery: str) -> dict[str, dict[str, Any]]:
    """cont_sign -> item of the gallery's live items, from /_syncd/items."""
    params = {"gallery": gallery, "access_token": server.access_token()}
    answer = requests.get(f"{server.url}/_syncd/items", params=params, timeout=10)
    assert answer.status_code == 200
    return {item["cont_sign"]: item for item in answer.json()["items"]}


def item_tags(item: dict[str, Any]) -> list[int]:
    """The tags of an item of /_syncd/items, whatever the gallery's tag style."""
    if "tags" in item:
        return list(item["tags"])
    return [t for t in (item["class_id1"], item["class_id2"]) if t is not None]
