"""docs/sync.md is the reference of sync options and hook annotations: it names every one the code knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.engine.hooks import DELETE_POLICY_ANNOTATIONS, HOOK_ANNOTATIONS
from agent.model import APP_SYNC_OPTIONS, REFUSED_SYNC_OPTIONS, DeletePolicy, HookType

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sync.md").read_text()


@pytest.mark.parametrize("option", sorted(APP_SYNC_OPTIONS | set(REFUSED_SYNC_OPTIONS)))
def test_every_sync_option_is_documented(option: str) -> None:
    key, _, value = option.partition("=")
    assert f"`{option}`" in DOC or (key == "PrunePropagationPolicy" and f"`{key}=foreground`" in DOC
                                    and f"`{value}`" in DOC), option


ARGO_ANNOTATIONS = [a for a in HOOK_ANNOTATIONS + DELETE_POLICY_ANNOTATIONS if a.startswith("argocd.argoproj.io/")]


@pytest.mark.parametrize("name", [*(t.value for t in HookType), *(p.value for p in DeletePolicy),
                                  *ARGO_ANNOTATIONS])
def test_every_hook_type_policy_and_annotation_is_documented(name: str) -> None:
    assert name in DOC
