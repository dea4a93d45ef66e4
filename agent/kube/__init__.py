"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import ApiResource, KubeClient, KubeRequest
from agent.kube.deletion import Deleted, preconditions

__all__ = ["ApiResource", "Deleted", "KubeClient", "KubeRequest", "preconditions"]
