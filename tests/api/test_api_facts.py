"""Baidu's facts (syncd.api.baidu) come without the HTTP client, and the codes the engine's
rules are built on keep their classes."""

from __future__ import annotations

import json
import subprocess
import sys

from syncd.api.baidu.codes import (
    ERROR_TABLE,
    ITEM_EXISTS_CODE,
    ITEM_MISSING_CODE,
    error_for,
    is_daily_quota,
)
from syncd.errors import DailyQuotaError, ItemExistsError, ItemMissingError, RateError


def test_reading_the_facts_loads_no_http_client() -> None:
    # config, pauses and the local gallery read the facts: they must not pay for requests
    code = (
        "import json, sys\n"
        "import syncd.config, syncd.pauses, syncd.estimate, syncd.api.baidu.brief\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m == 'requests' or m.startswith('syncd.api.baidu.client'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_the_named_codes_keep_their_classes() -> None:
    assert ITEM_EXISTS_CODE == 216681 and ERROR_TABLE[ITEM_EXISTS_CODE].cls is ItemExistsError
    assert ITEM_MISSING_CODE == 216680 and ERROR_TABLE[ITEM_MISSING_CODE].cls is ItemMissingError
    assert isinstance(error_for(18), RateError) and isinstance(error_for(4), RateError)
    assert isinstance(error_for(17), DailyQuotaError)
    assert is_daily_quota(17) and not is_daily_quota(19) and not is_daily_quota(18)
