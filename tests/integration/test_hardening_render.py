"""Careless and hostile kustomizations against the real kustomize and a real git server.

A tenant's kustomization must not read another tenant's repository out of the agent's
own bare-repository cache through a `file://` base, nor reach any address through an
`http://` one; kustomize runs without the agent's environment.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
import yaml

from agent.config import AppSpec, RenderSettings
from agent.errors import RenderError, SourceError
from agent.render import Renderer
from agent.source import GitSource
from tests.integration.helpers import configmap
from tests.integration.render_support import kustomize_binary
from tests.support.gitserver import GitServer, WorkTree


def renderer(source: GitSource, *, binary: str = "", allowed: tuple[str, ...] = ()) -> Renderer:
    settings = RenderSettings(kustomize_path=binary or str(kustomize_binary()), allowed_remote_bases=allowed)
    return Renderer(settings, source)


async def test_a_file_base_cannot_read_another_tenants_cached_repository(
    git_server: GitServer, tmp_path: Path
) -> None:
    git_server.create_repo("victim")
    victim = WorkTree(git_server, "victim", tmp_path / "victim")
    victim.commit_and_push({"app/kustomization.yaml": "resources: [secret.yaml]\n",
                            "app/secret.yaml": configmap("victim-credentials", {"token": "victim-secret"})}, "victim")
    git_server.create_repo("tenant")
    source = GitSource(tmp_path / "repos")
    victim_url = git_server.url("victim")
    victim_app = AppSpec(name="victim", repo=victim_url, revision="main", path="app")
    agent_renderer = renderer(source)
    await agent_renderer.render(victim_app, await source.fetch(victim_url, victim.head(), ref="main"))
    cached = source.repo_dir(victim_url)
    assert cached.is_dir()  # the victim's repository now sits in the agent's cache

    tenant = WorkTree(git_server, "tenant", tmp_path / "tenant")
    for reference in (f"file://{cached}//app?ref={victim.head()}", f"git::file://{cached}//app"):
        sha = tenant.commit_and_push({"app/kustomization.yaml": yaml.safe_dump({"resources": [reference]})}, "steal")
        tenant_url = git_server.url("tenant")
        app = AppSpec(name="thief", repo=tenant_url, revision="main", path="app")
        with pytest.raises(RenderError) as caught:
            await agent_renderer.render(app, await source.fetch(tenant_url, sha, ref="main"))
        assert str(caught.value).startswith("app thief: app/kustomization.yaml: resources: remote reference ")
        assert "refused: file:// references are refused" in str(caught.value)

    # Even with remote bases allowed, file:// and http:// stay refused.
    open_renderer = renderer(source, allowed=("github.com",))
    for reference in (f"file://{cached}//app", "http://169.254.169.254/latest/meta-data/"):
        sha = tenant.commit_and_push({"app/kustomization.yaml": yaml.safe_dump({"resources": [reference]})}, "again")
        with pytest.raises(RenderError, match=r"refused: (file://|plain http://)"):
            await open_renderer.render(app, await source.fetch(tenant_url, sha, ref="main"))
    source.close()


async def test_kustomize_runs_without_the_agents_environment(
    repo: WorkTree, git_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for kustomize that prints what it was given as a ConfigMap.
    fake = tmp_path / "kustomize"
    fake.write_text(
        "#!/bin/sh\n"
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: env\\ndata:\\n'\n"
        "for name in HOME GITOPS_TOKEN AWS_SECRET_ACCESS_KEY HTTPS_PROXY GIT_ALLOW_PROTOCOL KUBECONFIG; do\n"
        "  eval value=\\${$name-unset}\n"
        "  printf '  %s: \"%s\"\\n' \"$name\" \"$value\"\n"
        "done\n"
        "printf '  home_files: \"%s\"\\n' \"$(ls -A \"$HOME\" | tr '\\n' ' ')\"\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GITOPS_TOKEN", "ghp_agent_token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:password@proxy.internal:3128")
    sha = repo.commit_and_push({"app/kustomization.yaml": "resources: []\n"}, "empty kustomization")
    source = GitSource(tmp_path / "repos")
    url = git_server.url(repo.name)
    app = AppSpec(name="env", repo=url, revision="main", path="app")
    (manifest,) = await renderer(source, binary=str(fake), allowed=("github.com",)).render(
        app, await source.fetch(url, sha, ref="main"))
    data = manifest.obj["data"]
    assert (data["GITOPS_TOKEN"], data["AWS_SECRET_ACCESS_KEY"], data["KUBECONFIG"]) == ("unset",) * 3
    assert data["HTTPS_PROXY"] == "unset"  # a proxy URL with a password is not handed on
    assert data["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert Path(data["HOME"]).name == "home" and data["HOME"] != str(Path.home())
    assert data["home_files"] == ""
    assert not await asyncio.to_thread(Path(data["HOME"]).exists)  # removed with the render's workspace
    source.close()


async def test_a_render_holds_no_more_than_its_byte_budget(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    blob = "x" * 600_000
    sha = repo.commit_and_push({"plain/a.yaml": configmap("a", {"blob": blob}),
                                "plain/b.yaml": configmap("b", {"blob": blob}),
                                "base/kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
                                "base/a.yaml": configmap("a", {"blob": blob}),
                                "base/b.yaml": configmap("b", {"blob": blob}),
                                "overlay/kustomization.yaml": "resources: [../base]\n"}, "big files")
    source = GitSource(tmp_path / "repos")
    url = git_server.url(repo.name)
    revision = await source.fetch(url, sha, ref="main")
    small = Renderer(RenderSettings(kustomize_path=str(kustomize_binary()), max_render_bytes=1024 * 1024), source)
    with pytest.raises(SourceError, match=r": plain/b\.yaml: files exceed the total limit of \d+ bytes "
                                          r"\(what is left of max_render_bytes\)$"):
        await small.render(AppSpec(name="plain", repo=url, revision="main", path="plain"), revision)
    # A base's export counts against the same budget as the app's own directory.
    with pytest.raises(SourceError, match=r": base/b\.yaml: .*\(what is left of max_render_bytes\)$"):
        await small.render(AppSpec(name="overlay", repo=url, revision="main", path="overlay"), revision)
    roomy = Renderer(RenderSettings(kustomize_path=str(kustomize_binary())), source)
    assert len(await roomy.render(AppSpec(name="overlay", repo=url, revision="main", path="overlay"), revision)) == 2
    source.close()


async def test_kustomize_may_print_only_what_is_left_of_the_budget(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    fake = tmp_path / "kustomize"
    fake.write_text("#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' 'x'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    sha = repo.commit_and_push({"app/kustomization.yaml": "resources: []\n"}, "a kustomization")
    source = GitSource(tmp_path / "repos")
    url = git_server.url(repo.name)
    limited = Renderer(RenderSettings(kustomize_path=str(fake), max_render_bytes=2 * 1024 * 1024), source)
    with pytest.raises(RenderError, match=r"^app loud: app/kustomization\.yaml: kustomize build printed more than "
                                          r"the \d+ bytes left of the render's budget \(max_render_bytes\)$"):
        await limited.render(AppSpec(name="loud", repo=url, revision="main", path="app"),
                             await source.fetch(url, sha, ref="main"))
    source.close()
