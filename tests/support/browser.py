"""A real headless Chromium for the web UI's tests: Debian's `chromium` package driven by Playwright.

Playwright's Python package carries its own driver but no browser here: it launches the
Debian binary (`executable_path`), never one it would download. Nothing is skipped: without
the browser or the package the fixture fails and names the fix.

`console_errors(page)` collects what a person would see in the developer tools' console as
errors (console.error, failed loads, uncaught exceptions) so a test can assert there are none.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ENV = "GITOPS_AGENT_CHROMIUM"  # another Chromium binary, if not Debian's
CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")  # the binary itself first, then the wrapper
SCREENSHOTS_ENV = "GITOPS_AGENT_UI_SCREENSHOTS"  # a directory: the UI tests save the docs' screenshots there


def chromium_path() -> str:
    """The Chromium to drive; fails the test with the fix when there is none."""
    explicit = os.environ.get(CHROMIUM_ENV)
    for candidate in ([explicit] if explicit else [*CANDIDATES, shutil.which("chromium") or ""]):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("the UI tests need a real Chromium: apt-get install chromium (scripts/test installs it when run "
                f"as root), or set ${CHROMIUM_ENV} to a Chromium binary")


def screenshot_dir() -> Path | None:
    value = os.environ.get(SCREENSHOTS_ENV, "")
    return Path(value) if value else None
