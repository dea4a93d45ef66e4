"""Deeply nested JSON from the network is a 400, never a RecursionError."""

from __future__ import annotations

import pytest

from agent.server.views import loads_bounded
from agent.server.webhook import WebhookError, parse_payload

DEEP = "[" * 200_000 + "]" * 200_000


def test_deep_json_is_refused_before_decoding() -> None:
    with pytest.raises(ValueError, match=r"^JSON nested deeper than 64 levels$"):
        loads_bounded(DEEP)
    with pytest.raises(ValueError, match="nested deeper"):
        loads_bounded('{"a": ' * 100_000 + "1" + "}" * 100_000)


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"message": "' + "[{" * 1000 + '\\"]", "ok": [[1]]}'
    assert loads_bounded(text.encode()) == {"message": "[{" * 1000 + '"]', "ok": [[1]]}
    assert loads_bounded("[" * 64 + "]" * 64) is not None


def test_a_deep_webhook_payload_is_a_400() -> None:
    with pytest.raises(WebhookError) as caught:
        parse_payload({"Content-Type": "application/json"}, DEEP.encode())
    assert caught.value.status == 400 and "nested deeper than 64 levels" in str(caught.value)
    with pytest.raises(WebhookError):
        parse_payload({"Content-Type": "application/x-www-form-urlencoded"}, b"payload=" + DEEP.encode())
