"""Two agent processes on one Lease: exactly one reconciles and writes; the other takes over when the
leader dies (kill -9), stops cleanly, or loses the Lease to someone else.

Timings are shortened (lease 4 s, renew deadline 3 s, retry 0.5 s) so failover fits a test.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import yaml

from agent.errors import KubeConflict
from agent.kube import KubeClient
from agent.leader import micro_time
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total

LEASE_SECONDS, RETRY_SECONDS = 4.0, 0.5
POLL = "2s"


def config(lease: str, namespace: str, apps: str) -> str:
    return (f'leader_election = true\nleader_election_namespace = "{namespace}"\n'
            f'leader_election_name = "{lease}"\n'
            f'leader_election_lease_duration = "{LEASE_SECONDS:g}s"\nleader_election_renew_deadline = "3s"\n'
            f'leader_election_retry_period = "{RETRY_SECONDS:g}s"\n\n{apps}')


def app(name: str, url: str, namespace: str, *, path: str = "app") -> str:
    return application_toml(name, url, namespace=namespace, path=path,
                            sync_policy={"prune": "true", "self_heal": "true"})


def writes(metrics: str) -> float:
    """Applies (and dry runs) and deletes this agent sent, from gitops_agent_kube_requests_total."""
    return sum(sample_total(metrics, "gitops_agent_kube_requests_total", verb=verb) for verb in ("patch", "delete"))


def applied_seconds(agent: AgentProcess) -> set[tuple[str, str]]:
    """(object, second) of every apply this agent logged."""
    return {(e["object"], e["ts"][:19]) for e in agent.events if e["msg"] == "applied"}


def logged_at(event: dict[str, Any]) -> float:
    return datetime.strptime(event["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


async def leader_and_follower(agents: list[AgentProcess]) -> tuple[AgentProcess, AgentProcess]:
    async def settled() -> tuple[AgentProcess, AgentProcess] | None:
        roles = [await agent.is_leader() for agent in agents]
        if sorted(roles, key=str) == [False, True]:
            return (agents[0], agents[1]) if roles[0] else (agents[1], agents[0])
        return None
    return await eventually(settled, within=20, what="one leader and one follower")


async def test_exactly_one_of_two_agents_applies_and_the_other_takes_over_after_kill_9(
    kube: KubeClient, repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    lease, name = f"lead-{secrets.token_hex(3)}", f"ha-{secrets.token_hex(3)}"
    repo.commit_and_push({f"app/cm-{i}.yaml": configmap(f"cm-{i}", {"v": "1"}) for i in range(3)}, "three")
    body = config(lease, namespace, app(name, git_server.url(repo.name), namespace))
    agents = await asyncio.gather(*(start_agent(body, name=f"agent-{i}", poll_interval=POLL) for i in range(2)))
    leader, follower = await leader_and_follower(list(agents))

    await eventually(lambda: leader.synced(name), within=30, what="the app Synced by the leader")
    reconciles = await leader.metric("gitops_agent_reconcile_total", name=name)
    await eventually(lambda: _grew(leader.metric("gitops_agent_reconcile_total", name=name), reconciles + 2),
                     within=10, what="two more polls by the leader")
    leader_metrics, follower_metrics = await leader.metrics(), await follower.metrics()
    assert writes(leader_metrics) > 0 and writes(follower_metrics) == 0
    assert "gitops_agent_leader 1.0" in leader_metrics and "gitops_agent_leader 0.0" in follower_metrics
    ready = await follower.readiness()
    assert ready is not None and ready["ready"] is True
    assert ready["checks"]["leader"]["leader"] is False
    assert ready["checks"]["leader"]["holder"] == (await leader.readiness() or {})["checks"]["leader"]["identity"]
    status, _ = await follower.get_json(f"/api/v1/applications/{name}")
    assert status == 200  # followers serve the read API
    status, refused = await follower.post_json(f"/api/v1/applications/{name}/sync")
    assert status == 409 and "not the leader" in refused["error"]

    leader.proc.send_signal(signal.SIGKILL)
    killed, killed_wall = time.monotonic(), time.time()
    await leader.proc.wait()

    async def took_over() -> bool:
        return bool(await follower.is_leader())

    await eventually(took_over, within=LEASE_SECONDS + 4 * RETRY_SECONDS + 2, interval=0.05,
                     what="the follower to take over")
    failover = time.monotonic() - killed
    print(f"failover after kill -9: {failover:.2f}s (lease {LEASE_SECONDS:g}s, retry {RETRY_SECONDS:g}s)")
    assert failover <= LEASE_SECONDS + 2 * RETRY_SECONDS + 0.5

    second = repo.commit_and_push({"app/cm-0.yaml": configmap("cm-0", {"v": "2"})}, "change")
    await follower.refresh(name)

    async def converged() -> bool:
        status = await follower.app(name)
        live = await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "cm-0", "namespace": namespace}})
        return bool(status and status["revision"] == second and status["sync_status"] == "Synced"
                    and live and live["data"] == {"v": "2"})

    await eventually(converged, within=20, what="the new leader to converge")
    assert not applied_seconds(leader) & applied_seconds(follower), "an object applied by both in one second"
    assert all(logged_at(e) > killed_wall for e in follower.events if e["msg"] == "applied")
    assert "Traceback" not in follower.logs


async def test_a_leader_that_stops_cleanly_hands_over_within_one_retry(
    repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    lease, name = f"lead-{secrets.token_hex(3)}", f"calm-{secrets.token_hex(3)}"
    repo.commit_and_push({"app/cm.yaml": configmap("cm", {"v": "1"})}, "one")
    body = config(lease, namespace, app(name, git_server.url(repo.name), namespace))
    first = await start_agent(body, name="first", poll_interval=POLL)
    await eventually(first.is_leader, within=15, what="the first agent to lead")
    second = await start_agent(body, name="second", poll_interval=POLL)
    await eventually(lambda: _is(second.is_leader(), False), within=15, what="the second agent to follow")
    stopped = time.monotonic()
    assert await first.stop() == 0
    await eventually(second.is_leader, within=LEASE_SECONDS, interval=0.05, what="the second agent to lead")
    assert time.monotonic() - stopped < LEASE_SECONDS - 1  # released: no waiting out the lease
    assert any("released lease" in e["msg"] for e in first.events)


async def test_a_lease_taken_by_another_identity_stops_the_leader_before_its_next_write(
    kube: KubeClient, repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    lease, name = f"lead-{secrets.token_hex(3)}", f"waves-{secrets.token_hex(3)}"
    stuck = yaml.safe_dump({  # wave 0 never becomes healthy: no node has this label
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "stuck", "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stuck"}}, "template": {
            "metadata": {"labels": {"app": "stuck"}},
            "spec": {"nodeSelector": {"example.com/none": "true"}, "containers": [{"name": "c", "image": "x"}]}}},
    })
    later = yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "later", "annotations": {"argocd.argoproj.io/sync-wave": "1"}}})
    repo.commit_and_push({"app/stuck.yaml": stuck, "app/later.yaml": later}, "two waves")
    agent = await start_agent(config(lease, namespace, app(name, git_server.url(repo.name), namespace)),
                              name="leader", poll_interval=POLL)
    await eventually(agent.is_leader, within=15, what="the agent to lead")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stuck", "namespace": namespace}}
    await eventually(lambda: kube.get(deployment), within=20, what="wave 0 applied; the sync now waits for health")

    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease}"
    now = micro_time(datetime.now(UTC))
    await _rewrite_lease(kube, path, holderIdentity="intruder", renewTime=now, acquireTime=now,
                         leaseDurationSeconds=3600)

    await eventually(lambda: _is(agent.is_leader(), False), within=3, interval=0.05, what="the agent to step down")
    before = writes(await agent.metrics())
    # Following now (it has read the Lease again since stepping down): from here on it writes nothing.
    await eventually(lambda: any("is held by intruder; following" in e["msg"] for e in agent.events), within=10,
                     interval=0.05, what="the agent to follow the intruder")
    later_ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": namespace}}
    assert await kube.get(later_ref) is None, "the in-flight sync went on to the next wave"
    assert writes(await agent.metrics()) == before
    lost = [e for e in agent.events if "lost the lease" in e["msg"]]
    assert len(lost) == 1 and "lease taken by intruder" in lost[0]["msg"]
    assert any("is held by intruder; following" in e["msg"] for e in agent.events)
    ready = await agent.readiness()
    assert ready is not None and ready["ready"] is True and ready["checks"]["leader"]["holder"] == "intruder"
    assert agent.proc.returncode is None

    # The intruder gives the Lease up: the agent leads again and resumes its loops.
    await _rewrite_lease(kube, path, holderIdentity="", leaseDurationSeconds=1)
    await eventually(agent.is_leader, within=5, what="the agent to lead again")
    await eventually(lambda: _is(_writes_grew(agent, before), True), within=10, what="writes to resume")


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value is expected


async def _writes_grew(agent: AgentProcess, before: float) -> bool:
    return writes(await agent.metrics()) > before


async def _grew(count: Awaitable[float], to: float) -> bool:
    return await count >= to


async def test_a_lease_that_cannot_be_created_is_one_log_line_not_ready_and_no_writes(
    repo: WorkTree, git_server: GitServer, namespace: str, start_agent: StartAgent,
) -> None:
    missing = f"no-such-namespace-{secrets.token_hex(3)}"
    repo.commit_and_push({"app/cm.yaml": configmap("cm", {"v": "1"})}, "one")
    body = config("lead", missing, app("orphan", git_server.url(repo.name), namespace))
    agent = await start_agent(body, name="orphan", poll_interval=POLL)

    async def refused() -> dict[str, Any] | None:
        body = await agent.readiness()
        return body if body and "error" in body["checks"]["leader"] else None

    ready = await eventually(refused, within=15, what="readiness to report the lease error")
    assert ready["ready"] is False and ready["checks"]["leader"]["ok"] is False
    assert f'namespaces "{missing}" not found' in ready["checks"]["leader"]["error"]
    attempts = await agent.metric("gitops_agent_kube_requests_total", verb="post", resource_kind="Lease")
    await eventually(lambda: _grew(agent.metric("gitops_agent_kube_requests_total", verb="post",
                                                resource_kind="Lease"), attempts + 4),
                     within=10, what="four more attempts to create the lease")
    problems = [e for e in agent.events if e["msg"].startswith("leader election: cannot create lease")]
    assert len(problems) == 1 and problems[0]["level"] == "error"
    assert writes(await agent.metrics()) == 0
    assert agent.proc.returncode is None


async def _rewrite_lease(kube: KubeClient, path: str, **spec: Any) -> None:
    """Read, change and write the Lease back; the agent renews it meanwhile, so a write may lose the
    race (409) and is made again on the fresh copy, as any other writer of a Lease would."""
    for _ in range(20):
        current = await kube.request("GET", path)
        current["spec"].update(spec)
        try:
            await kube.request("PUT", path, body=current)
            return
        except KubeConflict:
            continue
    raise AssertionError(f"could not rewrite {path}: every write lost to a renewal")
