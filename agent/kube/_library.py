"""kubernetes-asyncio's configuration, kubeconfig loader and REST transport, without its models.

Importing `kubernetes_asyncio` runs its package `__init__`, which imports every generated
API class and model: about 36 MB resident that the agent never uses (it speaks plain JSON).
So the two packages are registered as empty namespaces first and only the modules the
agent needs are imported from them. When the library is already imported (or its layout
is not what this expects), the ordinary import is used instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

_PACKAGES = ("kubernetes_asyncio", "kubernetes_asyncio.client")


class _UnusedApiClient:
    """The kubeconfig loader names ApiClient for helpers the agent does not call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("gitops-agent loads kubernetes-asyncio without its generated ApiClient")


def _lean_import() -> None:
    spec = importlib.util.find_spec("kubernetes_asyncio")
    if spec is None or spec.origin is None:
        raise ImportError("kubernetes_asyncio is not installed")
    root = Path(spec.origin).parent
    if not (root / "client" / "rest.py").exists() or not (root / "config" / "kube_config.py").exists():
        raise ImportError("unexpected kubernetes_asyncio layout")
    for name, path in zip(_PACKAGES, (root, root / "client"), strict=True):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        package.__package__ = name
        sys.modules[name] = package
    client = sys.modules["kubernetes_asyncio.client"]
    configuration = importlib.import_module("kubernetes_asyncio.client.configuration")
    client.Configuration = configuration.Configuration  # type: ignore[attr-defined]
    client.ApiClient = _UnusedApiClient  # type: ignore[attr-defined]
    importlib.import_module("kubernetes_asyncio.client.rest")
    importlib.import_module("kubernetes_asyncio.config")


if "kubernetes_asyncio" not in sys.modules:
    try:
        _lean_import()
    except ImportError:
        for name in (*_PACKAGES, "kubernetes_asyncio.client.configuration", "kubernetes_asyncio.client.rest"):
            sys.modules.pop(name, None)

from kubernetes_asyncio.client.configuration import Configuration  # noqa: E402
from kubernetes_asyncio.client.rest import RESTClientObject  # noqa: E402
from kubernetes_asyncio.config import load_kube_config  # noqa: E402
from kubernetes_asyncio.config.config_exception import ConfigException  # noqa: E402

__all__ = ["ConfigException", "Configuration", "RESTClientObject", "load_kube_config"]
