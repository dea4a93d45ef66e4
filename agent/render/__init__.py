"""Rendering: an app's files → a list of Kubernetes objects (plain dicts)."""

from agent.render.kustomize import Kustomize, is_kustomization
from agent.render.plain import Manifest, load_manifests, parse_stream

__all__ = ["Kustomize", "Manifest", "is_kustomization", "load_manifests", "parse_stream"]
