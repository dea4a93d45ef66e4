"""Small helpers for integration tests: polling with short timeouts, manifests, agent settings."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agent.config import AgentSettings, AppSpec, Settings

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None] | T | None], *, within: float = 15.0,
                     interval: float = 0.1, what: str = "condition") -> T:
    """Poll `probe` (a coroutine function, or a plain one for a condition on local state) until it
    returns something truthy; fail with the last value after `within` seconds."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within}s waiting for {what}; last value: {last!r}")


def configmap(name: str, data: dict[str, str]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def deployment(name: str, *, replicas: int = 1, image: str = "registry.example.com/app:v1") -> str:
    labels = {"app.kubernetes.io/name": name}
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "main", "image": image}]}},
        },
    })


def settings_for(apps: list[AppSpec], *, state_dir: Path, kubeconfig: Path, poll_interval: float = 60.0) -> Settings:
    agent = AgentSettings(listen="127.0.0.1:0", state_dir=state_dir, poll_interval=poll_interval, poll_jitter=0.0,
                          kubeconfig=str(kubeconfig))
    return Settings(agent=agent, applications=tuple(apps))
