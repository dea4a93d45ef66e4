"""Remote references in kustomizations: refused unless an allowed base admits them; kustomize's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings
from agent.errors import ConfigError, RenderError
from agent.render import RenderLimits
from agent.render.inputs import collect_inputs
from agent.render.kustomize import kustomize_environment
from agent.render.remote import RemoteBase, loader_strings, parse_allowed, refusal, remote_target
from tests.unit.test_render_inputs import REVISION, MemorySource

ALLOWED = parse_allowed(["github.com/platform-team", "https://git.example.com/shared/", "ssh://git.internal:2222"])


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("file:///var/lib/gitops-agent/repos/other-tenant-0123.git", "file:// references are refused"),
        ("git::file:///var/lib/gitops-agent/repos/x.git", "file:// references are refused"),
        ("http://169.254.169.254/latest/meta-data/", "plain http:// and git:// references are refused"),
        ("git://github.com/platform-team/base", "plain http:// and git:// references are refused"),
        ("s3::https://bucket.s3.amazonaws.com/base", "s3:: references are refused"),
        ("ftp://example.com/base", "ftp:// references are refused"),
        ("https://github.com/someone-else/base", "https://github.com/someone-else/base is not under any"),
        ("https://github.com/platform-team/../someone-else/base", "`..` in its path"),
        ("https://github.com/platform-team/%2e%2e/someone-else/base", "`..` in its path"),
        ("https://git.example.com/shared-not/base", "is not under any"),
        ("ssh://git.internal/base", "ssh://git.internal/base is not under any"),
        ("git@gitlab.com:platform-team/base.git", "ssh://gitlab.com/platform-team/base.git is not under any"),
    ],
)
def test_refused_remote_references(reference: str, problem: str) -> None:
    found = refusal(reference, ALLOWED)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "reference",
    [
        "https://github.com/platform-team/base//deploy?ref=v1.2.0",
        "github.com/platform-team/base/deploy?ref=main",
        "git::https://GitHub.com/platform-team/base",
        "https://token@github.com/platform-team/base",
        "ssh://git@github.com/platform-team/base",
        "git@github.com:platform-team/base.git",
        "https://git.example.com/shared/monitoring?ref=v3",
        "ssh://git@git.internal:2222/anything",
    ],
)
def test_allowed_remote_references(reference: str) -> None:
    assert refusal(reference, ALLOWED) is None


def test_nothing_remote_is_allowed_by_default() -> None:
    assert refusal("https://github.com/platform-team/base", ()) == (
        "remote references are off ([agent] allowed_remote_bases is empty)")


def test_an_allowed_base_names_a_host_or_a_prefix() -> None:
    assert RemoteBase.parse("GitHub.com") == RemoteBase(host="github.com")
    assert RemoteBase.parse("https://git.example.com:8443/org/") == RemoteBase("git.example.com:8443", "/org", "https")
    for entry in ("http://github.com", "file:///srv/git", "https://", "https://github.com/a/../b"):
        with pytest.raises(ValueError, match=r"remote bases can be allowed|not a host"):
            RemoteBase.parse(entry)


def test_every_field_kustomize_loads_from_is_searched_but_data_is_not() -> None:
    kustomization = {
        "resources": ["deploy.yaml", "https://a.example/r"],
        "patches": [{"path": "http://169.254.169.254/patch", "target": {"kind": "Deployment"}}],
        "configMapGenerator": [{"name": "x", "files": ["creds=https://b.example/c"], "envs": ["e.env"]}],
        "openapi": {"path": "https://c.example/schema.json"},
        "replacements": [{"path": "file:///etc/r.yaml"}],
        "commonAnnotations": {"runbook": "https://runbooks.example.com", "path": "https://not.loaded"},
        "generators": ["apiVersion: v1\nkind: X\npath: https://inline.example\n"],
    }
    found = sorted(value for _, value in loader_strings(kustomization))
    assert found == ["creds=https://b.example/c", "deploy.yaml", "e.env", "file:///etc/r.yaml",
                     "http://169.254.169.254/patch", "https://a.example/r", "https://c.example/schema.json"]
    assert remote_target("creds=https://b.example/c", key="files") == "https://b.example/c"
    assert remote_target("creds=git@host.example:org/r", key="files") == "git@host.example:org/r"
    assert remote_target("e.env", key="envs") is None
    assert remote_target("../base?ref=v1", key="resources") == "../base?ref=v1"


async def _collect(files: dict[str, bytes], allowed: tuple[RemoteBase, ...] = ()) -> None:
    source = MemorySource(files)
    app_files = (await source.export("u", REVISION, "app")).files
    await collect_inputs(source, "u", REVISION, "app", app_files, RenderLimits(), allowed_remote=allowed)


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        (b"resources: ['file:///var/lib/gitops-agent/repos/victim-0a1b.git']\n",
         "app/kustomization.yaml: resources: remote reference 'file:///var/lib/gitops-agent/repos/victim-0a1b.git' "
         "refused: file:// references are refused"),
        (b"patches:\n- path: http://169.254.169.254/latest/meta-data/iam\n",
         "app/kustomization.yaml: path: remote reference 'http://169.254.169.254/latest/meta-data/iam' refused"),
        (b"configMapGenerator:\n- name: c\n  files: ['k=https://evil.example/x']\n",
         "app/kustomization.yaml: files: remote reference 'https://evil.example/x' refused: remote references are off"),
        (b"resources: [github.com/org/repo/deploy]\n",
         "app/kustomization.yaml: resources: remote reference 'github.com/org/repo/deploy' refused"),
        (b"transformers: [t.yaml]\n",
         "app/t.yaml: path: remote reference 'http://10.0.0.1/patch.yaml' refused"),
    ],
)
async def test_collect_refuses_remote_references_naming_them(kustomization: bytes, message: str) -> None:
    files = {"app/kustomization.yaml": kustomization,
             "app/t.yaml": b"apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\n"
                           b"path: http://10.0.0.1/patch.yaml\n"}
    with pytest.raises(RenderError) as caught:
        await _collect(files)
    assert message in str(caught.value)


async def test_collect_lets_allowed_bases_through() -> None:
    await _collect({"app/kustomization.yaml": b"resources: ['https://github.com/platform-team/base?ref=v1']\n"
                                              b"commonAnnotations: {runbook: 'http://wiki.internal/run'}\n"},
                   allowed=ALLOWED)


def test_kustomize_gets_a_minimal_environment(tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "GITOPS_TOKEN": "ghp_secret", "AWS_SECRET_ACCESS_KEY": "k",
               "HTTPS_PROXY": "http://user:pw@proxy:3128", "https_proxy": "http://proxy:3128",
               "HTTP_PROXY": "http://proxy:3128", "SSL_CERT_FILE": "/etc/ssl/ca.pem", "KUBECONFIG": "/k"}
    closed = kustomize_environment(tmp_path, remote=False, environ=environ)
    assert closed == {"PATH": "/usr/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
                      "LANG": "C.UTF-8", "KUSTOMIZE_PLUGIN_HOME": "/nonexistent", "GIT_ALLOW_PROTOCOL": "https:ssh",
                      "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    opened = kustomize_environment(tmp_path, remote=True, environ=environ)
    assert opened == {**closed, "https_proxy": "http://proxy:3128", "SSL_CERT_FILE": "/etc/ssl/ca.pem"}


def test_config_refuses_plain_http_and_file_bases(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nallowed_remote_bases = ["github.com/org", "https://git.example.com/x/"]\n')
    assert load_settings(config).agent.render.allowed_remote_bases == ("github.com/org", "https://git.example.com/x/")
    for entry in ("http://github.com", "file:///srv", "https://host/a/../b", "not a host"):
        config.write_text(f'[agent]\nallowed_remote_bases = ["{entry}"]\n')
        with pytest.raises(ConfigError, match=r"allowed_remote_bases: .* must be a host"):
            load_settings(config)
