"""Fixtures shared by integration test modules (the session ones live in tests/conftest.py)."""

from tests.integration.deploy_support import deployments
from tests.integration.state_helpers import state_app

__all__ = ["deployments", "state_app"]
