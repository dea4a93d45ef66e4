"""examples/argocd/ is tests/support/payments_repo.py written out (scripts/argocd-example), and its
agent.toml is a valid configuration: the example and what the tests run on never drift apart."""

from __future__ import annotations

from pathlib import Path

import yaml

from agent.argocd import parse_definitions
from agent.config import load_settings
from agent.model import Manifest
from tests.support.payments_repo import SERVICES, payments_repo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "argocd"
CONFIG = "agent.toml"  # the root app's configuration lives next to the repository, not in it


def test_the_example_is_the_payments_repository() -> None:
    on_disk = {str(path.relative_to(EXAMPLE)): path.read_text() for path in EXAMPLE.rglob("*") if path.is_file()}
    assert on_disk.pop(CONFIG)
    expected = payments_repo()
    assert sorted(on_disk) == sorted(expected), "run scripts/argocd-example"
    assert [path for path in expected if on_disk[path] != expected[path]] == [], "run scripts/argocd-example"


def test_the_example_configuration_points_one_root_app_at_argocd() -> None:
    (root,) = load_settings(EXAMPLE / CONFIG).applications
    assert (root.path, root.directory.recurse, root.sync_policy.prune) == ("argocd", True, True)


def test_the_example_definitions_parse_without_a_render() -> None:
    manifests = [Manifest(obj=yaml.safe_load(text), source=path, index=0)
                 for path, text in payments_repo().items() if path.startswith("argocd/")]
    found = parse_definitions(manifests, parent="payments-root")
    assert (len(found.apps), len(found.projects), len(found.sets), found.errors) == (len(SERVICES), 1, 1, ())
