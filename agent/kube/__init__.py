"""The Kubernetes edge: client lifecycle, discovery, server-side apply."""

from agent.kube.client import KubeClient, KubeRequest
from agent.kube.deletion import Deleted, preconditions
from agent.kube.discovery import ApiResource

__all__ = ["ApiResource", "Deleted", "KubeClient", "KubeRequest", "preconditions"]
