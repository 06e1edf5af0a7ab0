"""Fixtures of the client tests (the gallery server itself comes from tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.gallery.server import GalleryServer


@pytest.fixture
def issued_tokens(gallery_server: GalleryServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every access token the gallery server issues from now on, counted at the server."""
    tokens: list[str] = []
    authenticator = gallery_server.app.auth
    issue = authenticator.issue_token

    def recording_issue(params: Any) -> Any:
        answer = issue(params)
        if answer.status == 200:
            tokens.append(str(answer.body["access_token"]))
        return answer

    monkeypatch.setattr(authenticator, "issue_token", recording_issue)
    return tokens
