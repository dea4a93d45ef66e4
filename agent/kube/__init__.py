"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import ApiResource, Deleted, KubeClient, preconditions

__all__ = ["ApiResource", "Deleted", "KubeClient", "preconditions"]
