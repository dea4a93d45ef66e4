"""Two and three agent processes with `sharding = true`: every app runs on exactly one of them, each
replica's API shows every app and its owner, and apps move when a replica dies or stops.

Timings are shortened (lease 4 s, renew deadline 3 s, retry 0.5 s) so a take-over fits a test.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.kube import KubeClient
from tests.integration.argocd_support import application, root_toml, settled_ok
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree

LEASE_SECONDS, RETRY_SECONDS = 4.0, 0.5
POLL = "2s"
WEBHOOK_SECRET = "shard-hook-5e1d"


def config(namespace: str, apps: str) -> str:
    return (f'sharding = true\nleader_election_namespace = "{namespace}"\n'
            f'leader_election_lease_duration = "{LEASE_SECONDS:g}s"\nleader_election_renew_deadline = "3s"\n'
            f'leader_election_retry_period = "{RETRY_SECONDS:g}s"\n\n{apps}')


def apps_toml(names: Sequence[str], url: str, namespace: str) -> str:
    return "".join(application_toml(name, url, namespace=namespace, path=f"apps/{name}",
                                    sync_policy={"prune": "true", "self_heal": "true"}) for name in names)


def push_apps(repo: WorkTree, prefix: str, count: int = 12) -> list[str]:
    """`count` apps named `<prefix><i>-<tag>`, a ConfigMap each, pushed in one commit."""
    tag = secrets.token_hex(3)
    names = [f"{prefix}{i}-{tag}" for i in range(count)]
    repo.commit_and_push({f"apps/{name}/cm.yaml": configmap(f"cm-{name}", {"v": "1"}) for name in names}, "one")
    return names


async def start_replicas(start_agent: StartAgent, body: str, count: int, *,
                         keys: dict[str, str] | None = None) -> list[AgentProcess]:
    agent_keys = {"advertise_url": '"http://127.0.0.1:{port}"', **(keys or {})}
    return list(await asyncio.gather(*(start_agent(body, name=f"replica-{i}", poll_interval=POLL,
                                                   agent_keys=agent_keys) for i in range(count))))


async def shards(agent: AgentProcess) -> dict[str, Any]:
    body = await agent.readiness()
    return (body or {}).get("checks", {}).get("shards") or {}


async def owners(agents: Sequence[AgentProcess], names: Sequence[str]) -> dict[str, str] | None:
    """app → owner identity, once the 64 buckets are spread over all `agents` (each held by one) and
    every replica's list shows every app with one owner, all agreeing."""
    identities, held = [], []
    for agent in agents:
        details = await shards(agent)
        if not details.get("leader") or not details["buckets"]:
            return None  # not (yet) working, or the buckets not spread over it yet
        identities.append(details["identity"])
        held += details["buckets"]
    if sorted(held) != list(range(64)):
        return None  # a bucket moving (released, not claimed yet)
    seen: dict[str, str] | None = None
    for agent in agents:
        listed = await agent.applications()
        here = {name: str(listed[name].get("owner") or "") for name in names if name in listed}
        if len(here) != len(names) or not all(owner in identities for owner in here.values()):
            return None
        if seen is not None and here != seen:
            return None
        seen = here
    return seen


def applies(agents: Sequence[AgentProcess]) -> dict[str, list[int]]:
    """object → the indexes (in `agents`) of the replicas that logged applying it, in time order."""
    found: dict[str, list[tuple[datetime, int]]] = {}
    for index, agent in enumerate(agents):
        for event in agent.events:
            if event["msg"] == "applied":
                at = datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                found.setdefault(event["object"], []).append((at, index))
    return {obj: [index for _, index in sorted(events)] for obj, events in found.items()}


def handovers(order: list[int]) -> int:
    """How often the replica applying an object changed."""
    return sum(1 for before, after in itertools.pairwise(order) if before != after)


async def reconciles(agents: Sequence[AgentProcess], names: Sequence[str]) -> list[float]:
    return [sum([await agent.metric("gitops_agent_reconcile_total", name=name) for agent in agents]) for name in names]


async def polled_twice(agents: Sequence[AgentProcess], names: Sequence[str]) -> None:
    before = await reconciles(agents, names)

    async def grew() -> bool:
        return all(now >= then + 2 for now, then in zip(await reconciles(agents, names), before, strict=True))

    await eventually(grew, within=20, what="two more polls of every app")


async def shared_writes(agents: Sequence[AgentProcess]) -> float:
    return sum([await agent.metric("gitops_agent_shared_state_writes_total", result="succeeded") for agent in agents])


async def test_apps_split_agree_and_move_on_kill_9_keeping_a_rollback_pause(
    kube: KubeClient, repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    names = push_apps(repo, "sh")
    body = config(namespace, apps_toml(names, git_server.url(repo.name), namespace))
    agents = await start_replicas(start_agent, body, 2)

    owner_of = await eventually(lambda: owners(agents, names), within=30, what="every app owned by one replica")
    by_identity = {(await shards(agent))["identity"]: agent for agent in agents}
    assert set(owner_of.values()) <= set(by_identity)
    for name in names:
        await eventually(lambda n=name: agents[0].synced(n), within=30, what=f"{name} Synced (seen through replica 0)")

    # Strict exclusion: the first replica up may have run an app before the buckets spread; from
    # then on only its owner applies it (never the two in turn; an owner that finds it in sync applies nothing).
    for name in names:
        order = applies(agents).get(f"ConfigMap/{namespace}/cm-{name}", [])
        assert order and handovers(order) <= 1, f"{name} applied by the replicas in turn: {order}"
        assert handovers(order) == 0 or agents[order[-1]] is by_identity[owner_of[name]]

    # Polls that find nothing new write no shared state (the durable part did not change).
    await polled_twice(agents, names)
    writes = await shared_writes(agents)
    await polled_twice(agents, names)
    assert await shared_writes(agents) == writes, "a no-op poll wrote shared state"

    # Two syncs of one app, then a rollback through the replica that does not run it: forwarded.
    target = names[0]
    owner = by_identity[owner_of[target]]
    other = next(agent for agent in agents if agent is not owner)
    first = (await owner.app(target) or {})["revision"]
    second = repo.commit_and_push({f"apps/{target}/cm.yaml": configmap(f"cm-{target}", {"v": "2"})}, "two")
    await other.refresh(target)
    await eventually(lambda: other.synced(target, second), within=30, what="the second commit Synced")
    status, body = await other.post_json(f"/api/v1/applications/{target}/rollback", {"revision": first})
    assert status == 200, body
    paused = await other.app(target)
    assert paused is not None and paused["auto_sync_paused"] is not None and paused["owner"] == owner_of[target]

    # kill -9 of the owner: the survivor takes every app over, the pause kept.
    owner.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await owner.proc.wait()

    async def taken_over() -> dict[str, str] | None:
        found = await owners([other], names)
        return found if found and set(found.values()) == {(await shards(other))["identity"]} else None

    await eventually(taken_over, within=LEASE_SECONDS + 10, interval=0.1, what="the survivor to own every app")
    print(f"take-over after kill -9: {time.monotonic() - killed:.2f}s (lease {LEASE_SECONDS:g}s)")
    kept = await other.app(target)
    assert kept is not None and kept["auto_sync_paused"] is not None, "the rollback pause was lost in the take-over"
    assert kept["history"][0]["trigger"] == "rollback" and kept["history"][0]["revision"] == first
    live = await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": f"cm-{target}", "namespace": namespace}})
    assert live is not None and live["data"] == {"v": "1"}
    moment = time.time()
    await other.refresh(target)  # the new owner's reconcile keeps the rollback too

    async def reconciled_after() -> dict[str, Any] | None:
        app = await other.app(target)
        return app if app and app["reconciled_at"] and app["reconciled_at"] > moment else None

    app = await eventually(reconciled_after, within=20, what="a reconcile by the new owner")
    assert app["auto_sync_paused"] is not None and app["sync_status"] == "OutOfSync"
    assert (await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": f"cm-{target}", "namespace": namespace}}) or {})["data"] == {"v": "1"}

    # A commit to an app taken over is applied by its new owner.
    moved = next(name for name in names if by_identity[owner_of[name]] is owner and name != target)
    third = repo.commit_and_push({f"apps/{moved}/cm.yaml": configmap(f"cm-{moved}", {"v": "3"})}, "three")
    await other.refresh(moved)

    async def converged() -> bool:
        live = await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"cm-{moved}", "namespace": namespace}})
        return bool(await other.synced(moved, third) and live and live["data"] == {"v": "3"})

    await eventually(converged, within=30, what="the new commit applied by the new owner")
    # The new commit also ends the rollback's pause (as without sharding): the paused app follows.
    await eventually(lambda: other.synced(target, third), within=30, what="the paused app at the new commit")
    assert "Traceback" not in other.logs


async def test_a_webhook_to_a_replica_refreshes_the_app_on_its_owner(
    tmp_path: Path, repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    names = push_apps(repo, "hook")
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text(WEBHOOK_SECRET)
    url = git_server.url(repo.name)
    agents = await start_replicas(start_agent, config(namespace, apps_toml(names, url, namespace)), 2,
                                  keys={"webhook_secret_file": json.dumps(str(secret_file)), "poll_interval": '"1h"'})
    owner_of = await eventually(lambda: owners(agents, names), within=30, what="every app owned by one replica")
    for name in names:
        await eventually(lambda n=name: agents[1].synced(n), within=30, what=f"{name} Synced")
    identities = [(await shards(agent))["identity"] for agent in agents]
    assert set(owner_of.values()) == set(identities), "twelve apps on two replicas: both run some"

    second = repo.commit_and_push({f"apps/{name}/cm.yaml": configmap(f"cm-{name}", {"v": "2"}) for name in names},
                                  "two")
    payload = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    status, text = await agents[0].request("POST", "/api/webhook", body=payload, headers={
        "Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": f"sha256={signature}"})
    assert status == 202 and sorted(json.loads(text)["refreshed"]) == sorted(names), text
    for name in names:
        await eventually(lambda n=name: agents[0].synced(n, second), within=30, what=f"{name} at the pushed commit")


async def test_a_replica_that_stops_cleanly_hands_its_apps_over_and_three_share_the_rest(
    repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    names = push_apps(repo, "calm")
    body = config(namespace, apps_toml(names, git_server.url(repo.name), namespace))
    agents = await start_replicas(start_agent, body, 3)
    owner_of = await eventually(lambda: owners(agents, names), within=40, what="every app owned by one replica")
    for name in names:
        await eventually(lambda n=name: agents[2].synced(n), within=30, what=f"{name} Synced")
    identities = [(await shards(agent))["identity"] for agent in agents]

    leaving = agents[0]
    stayed = agents[1:]
    stopped = time.monotonic()
    assert await leaving.stop() == 0
    after = await eventually(lambda: owners(stayed, names), within=LEASE_SECONDS, interval=0.1,
                             what="the remaining replicas to own every app")
    handed = time.monotonic() - stopped
    print(f"hand-over on a clean stop: {handed:.2f}s")
    assert identities[0] not in after.values()
    # Apps of the replicas that stayed did not move (rendezvous hashing moves only the leaver's).
    assert all(after[name] == owner for name, owner in owner_of.items() if owner != identities[0])
    assert any("released" in e["msg"] for e in leaving.events)
    for name in names:
        await eventually(lambda n=name: stayed[0].reconciled(n), within=10, what=f"{name} reconciled")


async def test_argo_cd_children_are_known_to_every_replica_and_run_on_their_owners(
    repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    tag, url = secrets.token_hex(3), git_server.url(repo.name)
    root, nested = f"root-{tag}", f"nested-{tag}"
    children = [f"kid{i}-{tag}" for i in range(8)]
    leaf = f"leaf-{tag}"
    files = {f"apps/{name}/cm.yaml": configmap(f"cm-{name}", {"v": "1"}) for name in [*children, leaf]}
    files |= {f"argocd/{name}.yaml": application(name, url, path=f"apps/{name}", namespace=namespace)
              for name in children}
    files[f"argocd/{nested}.yaml"] = application(nested, url, path="nested", namespace=namespace)
    files[f"nested/{leaf}.yaml"] = application(leaf, url, path=f"apps/{leaf}", namespace=namespace)
    repo.commit_and_push(files, "an app of apps")
    agents = await start_replicas(start_agent, config(namespace, root_toml(root, url)), 2)
    names = [root, nested, leaf, *children]
    owner_of = await eventually(lambda: owners(agents, names), within=60, what="every app of the tree owned")

    async def everywhere_green() -> bool:
        listed = [await agent.applications() for agent in agents]
        return all(settled_ok(apps.get(name)) for apps in listed for name in [leaf, *children])

    await eventually(everywhere_green, within=90, what="every child green, seen through both replicas")
    for agent in agents:
        listed = await agent.applications()
        assert {listed[name]["parent"] for name in children} == {root} and listed[leaf]["parent"] == nested
    identities = {(await shards(agent))["identity"]: agent for agent in agents}
    assert len(set(owner_of.values())) == 2, "eleven apps on two replicas: both run some"
    for name in [leaf, *children]:
        order = applies(agents).get(f"ConfigMap/{namespace}/cm-{name}", [])
        assert order and (handovers(order) == 0 or agents[order[-1]] is identities[owner_of[name]]), (name, order)
        assert handovers(order) <= 1, f"{name} applied by the replicas in turn: {order}"


async def test_forwarded_requests_carry_the_callers_token_and_its_rights_only(
    tmp_path: Path, repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    names = push_apps(repo, "auth")
    viewer, deployer = f"viewer-{secrets.token_hex(16)}", f"deployer-{secrets.token_hex(16)}"
    (tmp_path / "tokens.csv").write_text(f"{viewer},vera,1001\n{deployer},dan,1002\n")
    auth = (f'[auth]\ntoken_file = {json.dumps(str(tmp_path / "tokens.csv"))}\npolicy_csv = """\n'
            'p, role:deployer, applications, get, */*, allow\np, role:deployer, applications, sync, */*, allow\n'
            'g, vera, role:readonly\ng, dan, role:deployer\n"""\n\n')
    agents = await start_replicas(start_agent, config(namespace, auth + apps_toml(names, git_server.url(repo.name),
                                                                                   namespace)), 2)

    async def listed(token: str) -> dict[str, dict[str, Any]] | None:
        status, text = await agents[0].request("GET", "/api/v1/applications",
                                               headers={"Authorization": f"Bearer {token}"})
        apps = {app["name"]: app for app in json.loads(text)} if status == 200 else {}
        done = set(apps) == set(names) and all(app.get("owner") and app["reconciled_at"] for app in apps.values())
        return apps if done else None

    await eventually(lambda: owners_spread(agents), within=30, what="the buckets spread over both replicas")
    apps = await eventually(lambda: listed(viewer), within=30, what="every app listed for the viewer")
    here = (await shards(agents[0]))["identity"]
    elsewhere = next(name for name, app in apps.items() if app["owner"] != here)
    assert (await agents[0].request("GET", "/api/v1/applications"))[0] == 401
    as_viewer, as_deployer = {"Authorization": f"Bearer {viewer}"}, {"Authorization": f"Bearer {deployer}"}
    status, text = await agents[0].request("GET", f"/api/v1/applications/{elsewhere}", headers=as_viewer)
    assert status == 200 and json.loads(text)["owner"] == apps[elsewhere]["owner"]
    # The caller's own token decides, here and at the owner: the viewer may not sync, the deployer may.
    sync = f"/api/v1/applications/{elsewhere}/sync"
    status, _ = await agents[0].request("POST", sync, body=b"{}",
                                        headers={**as_viewer, "Content-Type": "application/json"})
    assert status == 403
    status, text = await agents[0].request("POST", sync, body=b"{}",
                                           headers={**as_deployer, "Content-Type": "application/json"})
    assert status == 200, text
    forwarded = await agents[0].metric("gitops_agent_peer_requests_total", kind="forward", result="answered")
    assert forwarded >= 2
    assert "Bearer" not in agents[0].logs and viewer not in agents[1].logs, "a token in a log"


async def owners_spread(agents: Sequence[AgentProcess]) -> bool:
    """Every bucket runs on exactly one replica, and every replica's copy of the owner table (read once
    a round) already says so: until then a replica answers for a just-claimed bucket as if it were moving."""
    held = [await shards(agent) for agent in agents]
    return all(details.get("leader") and details.get("buckets") and details.get("free_buckets") == 0
               for details in held) and sorted(b for details in held for b in details["buckets"]) == list(range(64))
