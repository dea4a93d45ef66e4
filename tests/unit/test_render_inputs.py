from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from agent.errors import RenderError
from agent.model import Revision
from agent.render import RenderLimits
from agent.render.inputs import (
    KustomizeInputs,
    collect_inputs,
    is_remote,
    kustomization_references,
    looks_like_host_path,
    resolve,
)
from agent.render.remote import parse_allowed

REVISION = Revision(sha="a" * 40)


def test_references_are_read_from_every_field_that_names_directories() -> None:
    doc = {
        "resources": ["deploy.yaml", "../../base", {"not": "a path"}],
        "bases": ["../old-style"],
        "components": ["../../components/monitoring"],
        "generators": ["gen/", "apiVersion: builtins/v1\nkind: X\n"],
        "transformers": ["t.yaml"],
        "validators": ["v"],
        "patches": [{"path": "p.yaml"}],
    }
    assert kustomization_references(doc) == [
        ("resources", "deploy.yaml"), ("resources", "../../base"), ("bases", "../old-style"),
        ("components", "../../components/monitoring"), ("generators", "gen/"), ("transformers", "t.yaml"),
        ("validators", "v"),
    ]
    assert kustomization_references(None) == []


@pytest.mark.parametrize(
    ("reference", "remote"),
    [("https://github.com/org/repo//deploy?ref=v1", True), ("git::https://example.com/r.git", True),
     ("git@github.com:org/repo.git", True), ("github.com/org/repo/deploy?ref=main", True),
     ("ssh://git@example.com/r.git", True), ("../../base", False), ("deployment.yaml", False)],
)
def test_remote_references(reference: str, remote: bool) -> None:
    assert is_remote(reference) is remote


def test_host_like_paths() -> None:
    assert looks_like_host_path("github.com/org/repo/deploy")
    assert not looks_like_host_path("deployment.yaml")
    assert not looks_like_host_path("../base")


def test_resolve_stays_in_the_repository() -> None:
    assert resolve("apps/x/overlays/prod", "../../base") == "apps/x/base"
    assert resolve("apps/x", "./sub/") == "apps/x/sub"
    assert resolve("", ".") == ""
    assert resolve("apps", "../..") is None
    assert resolve("apps", "/etc") is None


def test_inputs_know_what_they_hold() -> None:
    inputs = KustomizeInputs(roots={"apps/x": {"kustomization.yaml": b"", "sub/a.yaml": b"a"},
                                    "apps/x/sub": {"a.yaml": b"a"}, "base": {"k.yaml": b""}})
    assert inputs.kind("apps/x/sub") == "dir"
    assert inputs.kind("apps/x/sub/a.yaml") == "file"
    assert inputs.kind("apps/x/nope") == "missing"
    assert inputs.kind("other") is None
    assert inputs.files_of("apps/x/sub") == {"a.yaml": b"a"}
    assert sorted(inputs.outermost()) == ["apps/x", "base"]


@dataclass(frozen=True)
class Entry:
    sha: str
    is_dir: bool


@dataclass(frozen=True)
class Files:
    files: Mapping[str, bytes]


class MemorySource:
    """A repository as a dict of paths, for following references without git."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.repo = files
        self.exported: list[str] = []

    async def export(self, url: str, revision: Revision, path: str, *, max_bytes: int | None = None) -> Files:
        self.exported.append(path)
        prefix = f"{path}/" if path else ""
        return Files({k[len(prefix):]: v for k, v in self.repo.items() if k.startswith(prefix)})

    async def tree_ids(self, url: str, revision: Revision, paths: Sequence[str]) -> dict[str, Entry | None]:
        found: dict[str, Entry | None] = {}
        for path in paths:
            if path in self.repo:
                found[path] = Entry("blob", False)
            elif any(k.startswith(f"{path}/") for k in self.repo):
                found[path] = Entry("tree", True)
            else:
                found[path] = None
        return found

    async def symlink_targets(self, url: str, revision: Revision, paths: Sequence[str]) -> tuple[str, ...]:
        return ()


async def test_collect_follows_bases_and_components_transitively_exporting_each_once() -> None:
    source = MemorySource({
        "apps/x/overlays/prod/kustomization.yaml": b"resources: [../../base, pdb.yaml]\n"
                                                   b"components: [../../../../components/mon]\n",
        "apps/x/overlays/prod/pdb.yaml": b"",
        "apps/x/base/kustomization.yaml": b"resources: [d.yaml, ../../../shared/ns]\n",
        "apps/x/base/d.yaml": b"",
        "shared/ns/kustomization.yaml": b"resources: [https://example.com/remote.git?ref=v1]\n",
        "components/mon/kustomization.yaml": b"kind: Component\n",
        "apps/y/base/kustomization.yaml": b"resources: []\n",
    })
    app_files = (await source.export("u", REVISION, "apps/x/overlays/prod")).files
    inputs = await collect_inputs(source, "u", REVISION, "apps/x/overlays/prod", app_files, RenderLimits(),
                                  allowed_remote=parse_allowed(["example.com"]))
    assert sorted(inputs.roots) == ["apps/x/base", "apps/x/overlays/prod", "components/mon", "shared/ns"]
    assert inputs.remote == {"https://example.com/remote.git?ref=v1"}
    assert sorted(source.exported) == sorted(inputs.roots)


@pytest.mark.parametrize(
    ("kustomization", "problem"),
    [
        (b"resources: [../missing]\n", r"^a/kustomization\.yaml: resources: '\.\./missing' does not exist \(missing "),
        (b"resources: [nope.yaml]\n", r"'nope\.yaml' does not exist \(a/nope\.yaml is not in the repository"),
        (b"components: [../../x]\n", r"^a/kustomization\.yaml: components: '\.\./\.\./x' leaves the repository$"),
        (b"resources: [/etc]\n", r"'/etc' leaves the repository"),
        (b"resources: [oops\n", r"^a/kustomization\.yaml: line \d+ column \d+: invalid YAML"),
        (b"resources: [../shared/cm.yaml]\n",
         r"^a/kustomization\.yaml: resources: '\.\./shared/cm\.yaml' is a file outside the kustomization's directory"),
    ],
)
async def test_bad_references_name_the_kustomization(kustomization: bytes, problem: str) -> None:
    source = MemorySource({"a/kustomization.yaml": kustomization, "shared/cm.yaml": b"kind: ConfigMap\n"})
    with pytest.raises(RenderError, match=problem):
        await collect_inputs(source, "u", REVISION, "a", {"kustomization.yaml": kustomization}, RenderLimits())
