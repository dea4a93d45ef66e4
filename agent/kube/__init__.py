"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import ApiResource, KubeClient

__all__ = ["ApiResource", "KubeClient"]
