"""The examples in docs/argocd.md are valid: each TOML block is a configuration the agent accepts,
and each complete Argo CD object parses as the guide says it does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from agent.argocd import Generated, GitTree, generate, parse_application_set
from agent.config import parse_settings

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "argocd.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_every_toml_block_is_a_valid_configuration() -> None:
    found = blocks("toml")
    assert len(found) >= 2
    for text in found:
        parse_settings(tomllib.loads(text), file="docs/argocd.md")


def test_the_guides_application_set_generates_one_app_per_tenant_overlay() -> None:
    (appset,) = [doc for doc in map(yaml.safe_load, blocks("yaml")) if doc.get("kind") == "ApplicationSet"]
    spec = parse_application_set(appset, file="docs/argocd.md")
    listing = GitTree(files=("apps/payment-service/overlays/tenant-std-001/kustomization.yaml",
                             "apps/ledger-service/overlays/tenant-std-001/kustomization.yaml",
                             "apps/ledger-service/overlays/dev/kustomization.yaml"))
    outcome = generate(spec, {("https://github.com/payments-engine/gitops.git", "main"): listing})
    assert isinstance(outcome, Generated)
    assert sorted(app.name for app in outcome.apps) == ["ledger-service-std-001", "payment-service-std-001"]
