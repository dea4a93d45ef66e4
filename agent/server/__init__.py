"""The HTTP surface: probes, metrics and the read API."""

from agent.server.app import build_app, serve

__all__ = ["build_app", "serve"]
