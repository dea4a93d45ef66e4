"""Bad input fails the render with a RenderError naming the app, the file and the cause.

Real kustomize, real git server. (That nothing is applied on a RenderError is shown
end to end in test_render_e2e.py.)
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from agent.errors import RenderError
from tests.integration.helpers import configmap, eventually
from tests.integration.render_support import RenderRig, make_rig, platform_files
from tests.support.gitserver import GitServer, WorkTree
from tests.support.manifests import BILLION_LAUGHS


async def render_error(rig: RenderRig, path: str, sha: str, **fields: object) -> str:
    with pytest.raises(RenderError) as caught:
        await rig.renderer.render(rig.app(path, name="payments", **fields), await rig.revision(sha))
    return str(caught.value)


async def test_yaml_syntax_error_in_a_plain_directory_names_file_and_line(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    sha = repo.commit_and_push({"app/good.yaml": configmap("good", {"k": "v"}),
                                "app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n"},
                               "broken")
    message = await render_error(make_rig(repo, git_server, tmp_path), "app", sha)
    assert message.startswith("app payments: app/bad.yaml: line 5 column 1: invalid YAML: ")


async def test_yaml_syntax_error_under_kustomize_names_file_and_line(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    files = platform_files()
    files["apps/payment-service/base/service.yaml"] = "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n"
    sha = repo.commit_and_push(files, "broken service")
    message = await render_error(make_rig(repo, git_server, tmp_path), "apps/payment-service/overlays/dev", sha)
    assert message.startswith("app payments: apps/payment-service/overlays/dev/kustomization.yaml: "
                              "kustomize build failed: ")
    assert message.endswith("accumulating resources: accumulating resources from 'service.yaml': "
                            "MalformedYAMLError: yaml: line 3: did not find expected ',' or ']' in File: service.yaml")
    assert "gitops-agent-render-" not in message, "temporary paths are rewritten as repository paths"


async def test_unknown_kustomize_field_is_a_clear_error(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    files = platform_files()
    path = "apps/ledger-service/overlays/dev"
    files[f"{path}/kustomization.yaml"] += "nameSufix: -typo\n"
    sha = repo.commit_and_push(files, "typo")
    message = await render_error(make_rig(repo, git_server, tmp_path), path, sha)
    assert message.startswith(f"app payments: {path}/kustomization.yaml: kustomize build failed: ")
    assert message.endswith('invalid Kustomization: json: unknown field "nameSufix"')


async def test_missing_base_names_the_kustomization_and_the_base(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    files = platform_files()
    path = "apps/ledger-service/overlays/staging"
    files[f"{path}/kustomization.yaml"] = files[f"{path}/kustomization.yaml"].replace("../../base", "../../bsae")
    sha = repo.commit_and_push(files, "typo in base")
    rig = make_rig(repo, git_server, tmp_path)
    message = await render_error(rig, path, sha)
    assert message == (f"app payments: {path}/kustomization.yaml: resources: '../../bsae' does not exist "
                       f"(apps/ledger-service/bsae is not in the repository at {sha[:12]})")
    assert rig.renderer.kustomize_builds == 0


async def test_a_reference_out_of_the_repository_is_refused(repo: WorkTree, git_server: GitServer,
                                                            tmp_path: Path) -> None:
    sha = repo.commit_and_push({"app/kustomization.yaml": "resources:\n  - ../../../../../../../etc\n"}, "escape")
    rig = make_rig(repo, git_server, tmp_path)
    message = await render_error(rig, "app", sha)
    assert message == ("app payments: app/kustomization.yaml: resources: '../../../../../../../etc' "
                       "leaves the repository")
    assert rig.renderer.kustomize_builds == 0


async def test_yaml_bomb_is_rejected_quickly_in_plain_and_kustomize_apps(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    sha = repo.commit_and_push({"plain/bomb.yaml": BILLION_LAUGHS, "kust/bomb.yaml": BILLION_LAUGHS,
                                "kust/kustomization.yaml": "resources: [bomb.yaml]\n"}, "lol")
    rig = make_rig(repo, git_server, tmp_path)
    await rig.revision(sha)
    for path in ("plain", "kust"):
        started = time.monotonic()
        message = await render_error(rig, path, sha)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"{path}: took {elapsed:.3f}s"
        assert message.startswith(f"app payments: {path}/bomb.yaml: document 1 (line 1): expands to more than ")
    assert rig.renderer.kustomize_builds == 0, "kustomize itself would spin on the bomb until the timeout"


async def test_missing_kustomize_binary_is_a_clear_error(repo: WorkTree, git_server: GitServer, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = "apps/ledger-service/overlays/dev"
    sha = repo.commit_and_push(platform_files(), "platform")
    configured = make_rig(repo, git_server, tmp_path / "a", kustomize_path=str(tmp_path / "no" / "kustomize"))
    message = await render_error(configured, path, sha)
    assert message.startswith(f"app payments: {path}/kustomization.yaml: cannot run {tmp_path}/no/kustomize: "
                              "No such file or directory")

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rig = make_rig(repo, git_server, tmp_path / "b", kustomize_path="")  # looked up on PATH
    message = await render_error(rig, path, sha)
    assert message == ("app payments: kustomize is not installed: neither kustomize nor kubectl is on PATH "
                       "(install kustomize or set [agent] kustomize_path)")


async def test_kustomize_that_hangs_is_killed_at_the_timeout(repo: WorkTree, git_server: GitServer,
                                                             tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = tmp_path / "kustomize-hangs"
    script.write_text(f'#!/bin/sh\nsleep 60 &\necho $! > "{child_pid}"\nwait\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    sha = repo.commit_and_push(platform_files(), "platform")
    rig = make_rig(repo, git_server, tmp_path, kustomize_path=str(script), render_timeout=0.5)
    await rig.revision(sha)
    started = time.monotonic()
    message = await render_error(rig, "apps/ledger-service/overlays/dev", sha)
    assert time.monotonic() - started < 3
    assert message == ("app payments: apps/ledger-service/overlays/dev/kustomization.yaml: "
                       "kustomize build timed out after 0.5s")
    pid = int(child_pid.read_text())

    async def gone() -> bool:
        return not _alive(pid)

    await eventually(gone, within=5, interval=0.05, what="the process kustomize started to be killed with it")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return not (state.exists() and state.read_text().split(") ", 1)[1].startswith("Z"))
