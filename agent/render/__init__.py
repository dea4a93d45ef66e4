"""Rendering: an app's files at a revision → a list of Kubernetes objects (plain dicts).

`Renderer` is the entry point; the rest is exported for tests and tools.
"""

from agent.model import ImageOverride, Manifest, parse_image
from agent.render.documents import RenderLimits, parse_stream
from agent.render.kustomize import KUSTOMIZATION_FILES, is_kustomization, kustomization_file
from agent.render.overrides import overlay_kustomization
from agent.render.plain import load_manifests, select_files
from agent.render.renderer import Renderer, RenderObserver, RenderStats
from agent.render.source import RenderSource

__all__ = [
    "KUSTOMIZATION_FILES",
    "ImageOverride",
    "Manifest",
    "RenderLimits",
    "RenderObserver",
    "RenderSource",
    "RenderStats",
    "Renderer",
    "is_kustomization",
    "kustomization_file",
    "load_manifests",
    "overlay_kustomization",
    "parse_image",
    "parse_stream",
    "select_files",
]
