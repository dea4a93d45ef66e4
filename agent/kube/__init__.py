"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import ApiResource, KubeClient
from agent.kube.deletion import Deleted, preconditions

__all__ = ["ApiResource", "Deleted", "KubeClient", "preconditions"]
