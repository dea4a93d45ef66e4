"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import ApiResource, KubeClient, KubeRequest

__all__ = ["ApiResource", "KubeClient", "KubeRequest"]
