"""The web UI's files as shipped: small, self-contained (nothing from elsewhere, nothing inline the
Content-Security-Policy would block), public, and exempt from the cross-site guard for GETs only."""

from __future__ import annotations

import re

from agent.server.guard import refusal
from agent.server.ui import ASSETS, CONTENT_SECURITY_POLICY, PAGE, is_ui_path, load_files

UI_BUDGET = 200 * 1024


def test_the_whole_ui_is_well_under_200_kb() -> None:
    files = load_files()
    assert set(files) == {PAGE, *ASSETS}
    total = sum(len(static.body) for static in files.values())
    assert total < UI_BUDGET / 4, f"{total} bytes"


def test_nothing_is_loaded_from_elsewhere_nor_run_inline() -> None:
    files = {name: static.body.decode() for name, static in load_files().items()}
    page = files[PAGE]
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/ui/app.js" defer>']
    assert "<style" not in page and " style=" not in page and not re.search(r"\son\w+=", page)
    for name, text in files.items():
        assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text), name
        assert "innerHTML" not in text and "eval(" not in text and "document.write" not in text, name
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_ui_paths_are_the_page_its_app_addresses_and_assets() -> None:
    assert all(is_ui_path(path) for path in ("/", "/applications/payment-service-dev", "/ui/app.js"))
    assert not any(is_ui_path(path) for path in ("/api/v1/applications", "/applications/a/sync", "/metrics"))


def test_a_link_from_another_site_opens_the_ui_but_reaches_no_api() -> None:
    cross_site = {"Sec-Fetch-Site": "cross-site", "Origin": "https://chat.example.com", "Host": "agent:8080"}
    assert refusal("GET", "/applications/payment-service-dev", cross_site) is None
    assert refusal("GET", "/ui/app.css", cross_site) is None
    assert refusal("GET", "/api/v1/applications", cross_site) is not None
    assert refusal("POST", "/applications/payment-service-dev", cross_site) is not None
