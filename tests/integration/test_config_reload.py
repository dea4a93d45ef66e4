"""SIGHUP reloads the configuration (issue 9), with the agent as users run it.

Apps added start, apps removed stop (their objects stay, or are deleted with
`prune_on_delete = true`, except those annotated Delete=false), changed apps sync their
new spec at once, unchanged apps are not reconciled again, and an invalid file keeps
the running configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.ports import free_port

SETTLE = 0.5  # how long a count must stay put to count as settled


def app_toml(name: str, url: str, path: str, namespace: str, *, prune_on_delete: bool = False) -> str:
    return application_toml(name, url, namespace=namespace, path=path, revision="main",
                            extra={"prune_on_delete": str(prune_on_delete).lower()})


def kept_configmap(name: str) -> str:
    doc = yaml.safe_load(configmap(name, {"KEEP": "yes"}))
    doc["metadata"]["annotations"] = {"argocd.argoproj.io/sync-options": "Delete=false"}
    return yaml.safe_dump(doc)


async def reload(agent: AgentProcess, apps: str) -> None:
    """Rewrite the agent's config file ([agent] as it was started, then `apps`) and send SIGHUP."""
    agent.config_path.write_text(agent_table(agent) + apps)
    agent.proc.send_signal(signal.SIGHUP)


def agent_table(agent: AgentProcess) -> str:
    """The `[agent]` table the agent was started with."""
    assert agent.config_path is not None
    return agent.config_path.read_text().split("\n[[", 1)[0] + "\n\n"


def events(agent: AgentProcess, msg: str) -> list[dict[str, Any]]:
    return [event for event in agent.events if event["msg"].startswith(msg)]


async def reloaded(agent: AgentProcess, count: int) -> list[dict[str, Any]] | None:
    found = events(agent, "configuration reloaded")
    return found if len(found) >= count else None


async def settled_reconciles(agent: AgentProcess, name: str) -> float:
    """The app's reconcile count once it stopped moving (echoes of its own sync may wake it once more)."""
    last, since = await agent.metric("gitops_agent_reconcile_total", name=name), time.monotonic()
    while time.monotonic() - since < SETTLE:
        await asyncio.sleep(0.1)
        now = await agent.metric("gitops_agent_reconcile_total", name=name)
        if now != last:
            last, since = now, time.monotonic()
    return last


async def test_sighup_adds_removes_and_changes_apps_and_prune_on_delete_keeps_delete_false(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    suffix = secrets.token_hex(3)  # app labels are matched across namespaces: names unique per test
    a, b, c = f"alpha-{suffix}", f"bravo-{suffix}", f"charlie-{suffix}"
    url = git_server.url(repo.name)
    sha = repo.commit_and_push({
        "a1/cm.yaml": configmap("a-settings", {"VERSION": "1"}),
        "a2/cm.yaml": configmap("a-settings", {"VERSION": "2"}),
        "a2/keep.yaml": kept_configmap("a-keeper"),
        "b/cm.yaml": configmap("b-settings", {"APP": "b"}),
        "c/cm.yaml": configmap("c-settings", {"APP": "c"}),
    }, "three apps")
    agent = await start_agent(app_toml(a, url, "a1", namespace) + app_toml(b, url, "b", namespace))

    async def live(name: str) -> dict[str, Any] | None:
        return await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": name, "namespace": namespace}})

    for name in (a, b):
        await eventually(lambda name=name: agent.synced(name, sha), within=20, what=f"{name} Synced")  # type: ignore[misc]
    assert (await live("a-settings") or {}).get("data") == {"VERSION": "1"}

    # Add C, remove B (its objects stay), move A to another path (and let it delete on removal).
    await reload(agent, app_toml(a, url, "a2", namespace, prune_on_delete=True) + app_toml(c, url, "c", namespace))
    (done,) = await eventually(lambda: reloaded(agent, 1), within=10, what="the first reload")
    assert done["msg"].endswith(f"1 added ({c}); 1 removed ({b}); 1 changed ({a})"), done["msg"]
    await eventually(lambda: agent.synced(c, sha), within=20, what="the added app Synced")
    assert (await live("c-settings") or {}).get("data") == {"APP": "c"}

    async def a_on_new_path() -> bool:
        current = await live("a-settings")
        return bool(current and current["data"] == {"VERSION": "2"} and await live("a-keeper")
                    and await agent.synced(a, sha))

    await eventually(a_on_new_path, within=20, what="A synced from its new path")
    assert await agent.app(b) is None
    _, listing = await agent.get("/api/v1/applications")
    assert sorted(item["name"] for item in json.loads(listing)) == sorted([a, c])
    assert (await live("b-settings") or {}).get("data") == {"APP": "b"}, "a removed app's objects stay"
    text = await agent.metrics()
    assert f'name="{b}"' not in text, "every series of the removed app is gone"
    assert 'gitops_agent_config_reload_total{result="success"} 1.0' in text

    async def ready() -> bool:
        return (await agent.get("/readyz"))[0] == 200

    await eventually(ready, within=10, what="ready after the reload")

    # Remove A, which has prune_on_delete = true: its objects go, except the one annotated Delete=false.
    c_reconciles = await settled_reconciles(agent, c)
    await reload(agent, app_toml(c, url, "c", namespace))
    await eventually(lambda: reloaded(agent, 2), within=10, what="the second reload")

    async def a_deleted() -> bool:
        return await live("a-settings") is None and await agent.app(a) is None

    await eventually(a_deleted, within=15, what="A's objects deleted and A gone from the API")
    keeper = await live("a-keeper")
    assert keeper is not None and keeper["metadata"].get("deletionTimestamp") is None, "Delete=false is kept"
    deleted = events(agent, "deleted")
    assert [(e["app"], e["object"], e["action"]) for e in deleted] == [(a, f"ConfigMap/{namespace}/a-settings",
                                                                        "deleted")]
    assert [e["object"] for e in events(agent, "kept: annotated Delete=false")] == [f"ConfigMap/{namespace}/a-keeper"]
    assert await settled_reconciles(agent, c) == c_reconciles, "an unchanged app is not reconciled again"
    text = await agent.metrics()
    assert f'name="{a}"' not in text
    assert 'gitops_agent_config_reload_total{result="success"} 2.0' in text
    assert agent.proc.returncode is None
    assert "Traceback" not in agent.logs


async def test_invalid_config_on_sighup_keeps_the_running_configuration(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    name = f"steady-{secrets.token_hex(3)}"
    url = git_server.url(repo.name)
    repo.commit_and_push({"app/cm.yaml": configmap("steady", {"k": "v"})}, "one")
    agent = await start_agent(app_toml(name, url, "app", namespace))
    await eventually(lambda: agent.reconciled(name), within=20, what="the first reconcile")
    assert agent.config_path is not None

    await reload(agent, app_toml(name, url, "app", namespace) + "prune_on_delet = true\n")

    async def refused() -> str | None:
        text = await agent.metrics()
        return text if 'gitops_agent_config_reload_total{result="error"} 1.0' in text else None

    refusal = await eventually(refused, within=10, what="the reload counted as an error")
    assert "gitops_agent_config_last_reload_successful 0.0" in refusal
    # The counter may be scraped before the log line reaches the pipe: wait for the line too.
    (failure,) = await eventually(lambda: events(agent, "configuration reload failed"), within=5,
                                  what="the failed reload logged")
    assert failure["level"] == "error"
    assert failure["error"] == f"{agent.config_path}: applications[0].prune_on_delet: unknown key"
    assert agent.proc.returncode is None
    assert (await agent.get("/healthz"))[0] == 200
    app = await agent.app(name)
    assert app is not None and app["sync_status"] == "Synced", "the running configuration is kept"

    # A valid file again: taken; a key that needs a restart is named and keeps its running value.
    config = agent_table(agent)
    config = re.sub(r'listen = "[^"]*"', f'listen = "127.0.0.1:{free_port()}"', config)
    config = config.replace('poll_interval = "1m"', 'poll_interval = "2m"')
    agent.config_path.write_text(config + app_toml(name, url, "app", namespace))
    agent.proc.send_signal(signal.SIGHUP)
    (done,) = await eventually(lambda: reloaded(agent, 1), within=10, what="the valid reload")
    assert done["msg"].endswith("[agent] poll_interval"), done["msg"]
    (warning,) = events(agent, "configuration reload: [agent] listen change only when the agent restarts")
    assert warning["level"] == "warning"
    after = await agent.metrics()
    assert 'gitops_agent_config_reload_total{result="success"} 1.0' in after
    assert "gitops_agent_config_last_reload_successful 1.0" in after
    assert (await agent.get("/healthz"))[0] == 200, "still serving on the address it started with"


async def test_sighup_takes_new_repository_credentials_and_webhook_secret(
    start_agent: StartAgent, tmp_path: Path, namespace: str
) -> None:
    with GitServer(tmp_path / "auth-srv", username="deploy-bot", password="right-pw-81c2") as server:
        server.create_repo("team/config")
        work = WorkTree(server, "team/config", tmp_path / "work")
        sha = work.commit_and_push({"app/cm.yaml": configmap("private", {"v": "1"})}, "first")
        url = server.url("team/config")
        (tmp_path / "wrong").write_text("wrong-pw")
        (tmp_path / "right").write_text("right-pw-81c2")
        (tmp_path / "hook").write_text("hook-secret-77")
        name = f"private-{secrets.token_hex(3)}"
        app = app_toml(name, url, "app", namespace)

        def entry(password_file: str, extra: str = "") -> str:
            return (f'[[repositories]]\nurl = "{server.base_url}team/"\nusername = "deploy-bot"\n'
                    f'password_file = "{tmp_path / password_file}"\n{extra}\n')

        agent = await start_agent(entry("wrong") + app, poll_interval="1h")

        async def refused() -> dict[str, Any] | None:
            current = await agent.app(name)
            return current if current and "authentication refused" in current["message"] else None

        await eventually(refused, within=20, what="the app refused by the git server")
        payload = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
        signature = hmac.new(b"hook-secret-77", payload, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"}
        assert (await agent.request("POST", "/api/webhook", body=payload, headers=headers))[0] == 401

        await reload(agent, entry("right", f'webhook_secret_file = "{tmp_path / "hook"}"') + app)

        # Within the hour of polling: a failing app is asked again at once when credentials change.
        await eventually(lambda: agent.synced(name, sha), within=15,
                         what="the app synced with the reloaded credentials")
        (done,) = await eventually(lambda: reloaded(agent, 1), within=5, what="the reload")
        assert done["msg"].endswith("[[repositories]]"), done["msg"]
        status, body = await agent.request("POST", "/api/webhook", body=payload, headers=headers)
        assert (status, json.loads(body)["refreshed"]) == (202, [name])
