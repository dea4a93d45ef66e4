"""`gitops-agent app …` as an operator runs it: `python -m agent app VERB` in a subprocess, against a real
agent process on the local cluster. Exit codes are the contract: 0 ok (diff: none), 1 failed or
differences, 2 refused or not found, 3 unreachable, 4 token or permission."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.integration.test_access_control import auth_toml, tokens_file
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree

SECRET_VALUE = "hunter2-never-shown"


def secret(name: str, value: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "data": {"password": base64.b64encode(value.encode()).decode()}})


async def cli(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m agent ARGS` with `env` added to an environment without any GITOPS_AGENT_* variable of
    the caller's; (exit code, stdout, stderr)."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("GITOPS_AGENT_")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env={**environ, **(env or {})})
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def edit_configmap(kube: KubeClient, namespace: str, name: str, data: dict[str, str]) -> None:
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/{name}", body={"data": data},
                       content_type="application/merge-patch+json")


async def live_configmap(kube: KubeClient, namespace: str, name: str) -> dict[str, str]:
    return (await kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}"))["data"]


async def out_of_sync(agent: AgentProcess, name: str) -> bool:
    app = await agent.app(name)
    return bool(app and app["sync_status"] == "OutOfSync")


async def test_list_get_diff_sync_and_wait_against_a_running_agent(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    name = f"cli-{secrets.token_hex(3)}"
    sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "git-value"}),
                                "app/secret.yaml": secret("creds", SECRET_VALUE)}, "settings and creds")
    agent = await start_agent(application_toml(name, git_server.url(repo.name), namespace=namespace, path="app",
                                               revision="main", sync_policy={"self_heal": "false"}))
    await agent.wait_up()
    await eventually(lambda: agent.synced(name, sha), within=30, what="the app synced")
    server = ("--server", agent.base_url)

    code, out, err = await cli("app", "list", *server)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "AGE"]
    assert [row.split()[:5] for row in rows] == [[name, "default", "Synced", "Healthy", sha[:7]]]
    code, out, _ = await cli("app", "list", *server, "-o", "json")
    assert code == 0 and json.loads(out)[0]["name"] == name
    code, out, _ = await cli("app", "get", name, *server)
    assert code == 0 and "Sync Status:" in out and f"Synced to main ({sha[:7]})" in out
    assert any(line.split()[:5] == ["<none>", "ConfigMap", namespace, "settings", "Synced"]
               for line in out.splitlines()), out
    code, out, _ = await cli("app", "get", name, *server, "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["resources"]
    code, out, err = await cli("app", "diff", name, *server)
    assert (code, out) == (0, ""), err

    # Changed behind Git's back, with self-heal off: the diff shows both values, no Secret value.
    await edit_configmap(kube, namespace, "settings", {"LEVEL": "hand-edited"})
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/secrets/creds",
                       body={"data": {"password": base64.b64encode(b"typed-by-hand").decode()}},
                       content_type="application/merge-patch+json")
    await eventually(lambda: out_of_sync(agent, name), within=20, what="OutOfSync after the edit")
    code, out, err = await cli("app", "diff", name, *server, "--refresh")
    assert code == 1, (out, err)
    assert f"===== ConfigMap/{namespace}/settings ======" in out
    assert "-  LEVEL: hand-edited" in out and "+  LEVEL: git-value" in out, out
    assert f"Secret/{namespace}/creds" in out and "redacted" in out
    for shown in (SECRET_VALUE, "typed-by-hand", base64.b64encode(SECRET_VALUE.encode()).decode(),
                  base64.b64encode(b"typed-by-hand").decode()):
        assert shown not in out
    code, _, err = await cli("app", "wait", name, *server, "--sync", "--timeout", "1")
    assert code == 1 and "timed out after 1s: sync OutOfSync" in err and len(err.splitlines()) == 1

    code, out, err = await cli("app", "sync", name, *server, "--dry-run")
    assert code == 0 and "-  LEVEL: hand-edited" in out, (out, err)
    assert await live_configmap(kube, namespace, "settings") == {"LEVEL": "hand-edited"}
    code, out, err = await cli("app", "sync", name, *server, "--resource", f":ConfigMap:{namespace}/settings")
    assert code == 0, (out, err)
    assert "Phase:    Succeeded" in out
    assert any(line.split()[1:5] == ["ConfigMap", namespace, "settings", "configured"] for line in out.splitlines())
    assert await live_configmap(kube, namespace, "settings") == {"LEVEL": "git-value"}
    code, out, err = await cli("app", "sync", name, *server)
    assert code == 0 and "Secret" in out, (out, err)
    code, out, err = await cli("app", "wait", name, *server, "--timeout", "30")
    assert code == 0 and f"{name}: Synced, Healthy at {sha[:7]}" in out, err
    code, out, err = await cli("app", "diff", name, *server)
    assert (code, out) == (0, ""), err

    code, out, err = await cli("app", "sync", name, *server, "--async")
    assert code == 0 and "sync queued" in out, err
    code, out, err = await cli("app", "history", name, *server)
    assert code == 0 and out.splitlines()[0].split()[:4] == ["ID", "REVISION", "TRIGGER", "PHASE"], err
    assert out.splitlines()[1].split()[2:4] == ["manual", "Succeeded"]
    code, out, err = await cli("history", name, *server)  # the old spelling
    assert code == 0 and "deprecated: use `gitops-agent app history`" in err and "manual" in out

    # Errors: one line on stderr, and a code of 2 or more.
    code, out, err = await cli("app", "get", "no-such-app", *server)
    assert code == 2 and out == "" and err.strip() == (
        "gitops-agent: app get no-such-app: application no-such-app not found (HTTP 404)")
    code, _, err = await cli("app", "sync", "no-such-app", *server)
    assert code == 2 and "not found" in err
    code, _, err = await cli("app", "sync", name, *server, "--resource", "Deployment")
    assert code == 2 and "GROUP:KIND:NAME" in err
    code, _, err = await cli("app", "list", "--server", "http://127.0.0.1:9")
    assert code == 3 and err.startswith("gitops-agent: app list: cannot reach the agent at http://127.0.0.1:9")
    code, out, _ = await cli("app", "list", env={"GITOPS_AGENT_SERVER": agent.base_url})
    assert code == 0 and name in out, "the server from the environment"


async def test_tokens_decide_what_the_cli_may_do(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    name = f"cli-auth-{secrets.token_hex(3)}"
    tokens = tokens_file(tmp_path / "tokens.csv", "default")
    url = git_server.url(repo.name)
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "1"})}, "first")
    agent = await start_agent(auth_toml(tmp_path / "tokens.csv")
                              + application_toml(name, url, namespace=namespace, path="app", revision="main"))
    await agent.wait_up()
    server = ("--server", agent.base_url)
    admin = ("--token", tokens["admin"])
    code, out, err = await cli("app", "wait", name, *server, *admin, "--timeout", "30")
    assert code == 0 and first[:7] in out, err

    code, out, err = await cli("app", "list", *server, "--token", "not-a-token")
    assert code == 4 and out == "" and len(err.splitlines()) == 1
    assert "refused the request (HTTP 401): the token is not valid" in err
    code, _, err = await cli("app", "list", *server)
    assert code == 4 and "authentication required" in err and "set --token or $GITOPS_AGENT_TOKEN" in err
    code, out, err = await cli("app", "list", *server, env={"GITOPS_AGENT_TOKEN": tokens["viewer"]})
    assert code == 0 and name in out, err
    code, _, err = await cli("app", "sync", name, *server, "--token", tokens["viewer"])
    assert code == 4 and f"permission denied: sync applications default/{name} (subject vera)" in err
    code, out, err = await cli("app", "sync", name, *server, "--token", tokens["deployer"])
    assert code == 0 and "Succeeded" in out, err

    second = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "2"})}, "second")
    code, _, err = await cli("app", "refresh", name, *server, *admin)
    assert code == 0, err
    await eventually(lambda: admin_sees(agent, tokens["admin"], name, second), within=30, what="synced at second")
    code, _, err = await cli("app", "rollback", name, *server, "--token", tokens["deployer"])
    assert code == 4 and "rollback applications" in err
    code, out, err = await cli("app", "rollback", name, first[:8], *server, *admin)
    assert code == 0 and f"rolled back to {first[:7]}: Succeeded" in out and "auto-sync paused" in out, err
    assert await live_configmap(kube, namespace, "settings") == {"LEVEL": "1"}
    code, out, err = await cli("app", "history", name, *server, *admin)
    assert code == 0 and out.splitlines()[1].split()[2] == "rollback" and " ada " in out.splitlines()[1], out
    code, out, err = await cli("app", "resume", name, *server, *admin)
    assert code == 0 and "auto-sync resumed" in out, err
    await eventually(lambda: admin_sees(agent, tokens["admin"], name, second), within=30, what="back at second")


async def admin_sees(agent: AgentProcess, token: str, name: str, sha: str) -> bool:
    status, text = await agent.request("GET", f"/api/v1/applications/{name}",
                                       headers={"Authorization": f"Bearer {token}"})
    body = json.loads(text) if status == 200 else {}
    return body.get("sync_status") == "Synced" and body.get("revision") == sha
