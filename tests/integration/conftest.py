"""Fixtures shared by integration test modules (the session ones live in tests/conftest.py)."""

from tests.integration.deploy_support import deployments
from tests.integration.state_helpers import state_app
from tests.integration.sync_support import make_harness

__all__ = ["deployments", "make_harness", "state_app"]
