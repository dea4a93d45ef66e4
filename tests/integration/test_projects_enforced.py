"""Projects mean exactly what they say, with a real agent process on the real cluster: the payments
team's AppProject refuses a namespace outside its destinations, a ClusterRoleBinding, a repository
outside its sourceRepos and a project nobody declared, each before anything is created; a project
changed by SIGHUP takes effect at once, and what lies outside it is never pruned; a deny window holds
an automated sync and lets a manual one through only with `manual_sync`; another app's object is
never taken over, and `adopt_existing = false` refuses to adopt.

The API side of access control (tokens, roles) is tests/integration/test_access_control.py.
"""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path
from typing import Any

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.projects import seed_project_toml

AUTOMATED_PRUNE = {"automated": "true", "prune": "true"}


def cluster_role_binding(name: str, namespace: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    })


def ref(kind: str, name: str, namespace: str = "", api_version: str = "v1") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


async def conditions(agent: AgentProcess, name: str, kind: str) -> list[str] | None:
    """The messages of the app's conditions of `kind`, once it has one."""
    app = await agent.app(name)
    found = [c["message"] for c in app["conditions"] if c["type"] == kind] if app else []
    return found or None


async def test_the_payments_project_refuses_what_it_does_not_permit_before_creating_anything(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    project = f"payments-{tag}"
    good, rbac, outside, foreign, ghost = (f"{kind}-{tag}" for kind in ("good", "rbac", "outside", "foreign", "ghost"))
    url = git_server.url(repo.name)
    repo.commit_and_push({
        "good/cm.yaml": configmap(f"good-{tag}", {}),
        "rbac/cm.yaml": configmap(f"rbac-{tag}", {}),
        "rbac/crb.yaml": cluster_role_binding(f"evil-{tag}", namespace),
        "outside/cm.yaml": configmap(f"outside-{tag}", {}),
    }, "one app per rule")
    elsewhere = f"elsewhere-{tag}"
    git_server.create_repo(elsewhere)
    WorkTree(git_server, elsewhere, tmp_path / "elsewhere").commit_and_push(
        {"cm.yaml": configmap(f"foreign-{tag}", {})}, "not the payments repository")

    def app(name: str, path: str, *, app_namespace: str = namespace, source: str = url,
            in_project: str = project) -> str:
        return application_toml(name, source, namespace=app_namespace, path=path, revision="main",
                                extra={"project": json.dumps(in_project)}, sync_policy=AUTOMATED_PRUNE)

    agent = await start_agent(
        seed_project_toml(name=project, repo=url, namespace=namespace)
        + app(good, "good") + app(rbac, "rbac") + app(outside, "outside", app_namespace="default")
        + app(foreign, ".", source=git_server.url(elsewhere)) + app(ghost, "good", in_project=f"nowhere-{tag}"))
    await agent.wait_up()
    await eventually(lambda: agent.synced(good), within=30, what="the permitted app synced")

    # An object the project does not permit: the sync fails as a whole; its ConfigMap is not applied either.
    (refused,) = await eventually(lambda: conditions(agent, rbac, "SyncError"), within=30, what="the refusal")
    assert refused == (f"ClusterRoleBinding/evil-{tag} is not permitted in project {project} "
                       "(clusterResourceWhitelist)")
    shown = await agent.app(rbac)
    assert shown is not None and shown["sync_status"] == "OutOfSync" and shown["history"][0]["phase"] == "Failed"
    status, answer = await agent.post_json(f"/api/v1/applications/{rbac}/sync", {})
    assert status == 409 and answer["phase"] == "Failed" and answer["message"] == refused, answer
    assert not [change for change in answer["changes"] if change["action"] in ("created", "configured")]

    # The app itself outside the project: refused before anything is fetched (InvalidSpecError, Unknown).
    for name, message in (
        (outside, f"namespace default is not a permitted destination of project {project} "
                  "(server https://kubernetes.default.svc)"),
        (foreign, f"repository {git_server.url(elsewhere)} is not permitted in project {project} "
                  "(not in sourceRepos)"),
        (ghost, f"application {ghost} belongs to project nowhere-{tag}, which does not exist"),
    ):
        assert await eventually(lambda n=name: conditions(agent, n, "InvalidSpecError"), within=30,
                                what=f"{name} refused") == [message]
        shown = await agent.app(name)
        assert shown is not None and shown["sync_status"] == "Unknown" and shown["history"] == [], shown
    status, answer = await agent.post_json(f"/api/v1/applications/{foreign}/sync", {"revision": "main"})
    assert status == 409 and answer["error"].endswith("(not in sourceRepos)"), answer
    assert git_server.count(repo=elsewhere, kind="ls-remote") == 0, "a repository outside sourceRepos is not asked"
    assert git_server.count(repo=elsewhere, kind="fetch") == 0

    for obj in (ref("ClusterRoleBinding", f"evil-{tag}", api_version="rbac.authorization.k8s.io/v1"),
                ref("ConfigMap", f"rbac-{tag}", namespace), ref("ConfigMap", f"outside-{tag}", "default"),
                ref("ConfigMap", f"foreign-{tag}", namespace)):
        assert await kube.get(obj) is None, f"{obj['kind']}/{obj['metadata']['name']} was created"
    assert await kube.get(ref("ConfigMap", f"good-{tag}", namespace)) is not None


async def test_a_project_changed_by_sighup_takes_effect_at_once_and_what_it_leaves_out_is_never_pruned(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient
) -> None:
    tag = secrets.token_hex(3)
    project, name = f"vault-{tag}", f"vault-{tag}"
    url = git_server.url(repo.name)
    secret = yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                             "stringData": {"password": "not-a-real-one"}})
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {}), "app/secret.yaml": secret}, "with a Secret")
    seed = seed_project_toml(name=project, repo=url, namespace=namespace)
    with_secrets = seed.replace('  {{ group = "", kind = "ConfigMap" }},\n'.replace("{{", "{").replace("}}", "}"),
                                '  { group = "", kind = "ConfigMap" },\n  { group = "", kind = "Secret" },\n')
    assert with_secrets != seed
    app = application_toml(name, url, namespace=namespace, path="app", revision="main",
                           extra={"project": json.dumps(project)}, sync_policy=AUTOMATED_PRUNE)
    agent = await start_agent(with_secrets + app)
    await eventually(lambda: agent.synced(name, first), within=30, what="the app synced with its Secret")

    def reload(project_toml: str) -> None:
        agent.config_path.write_text(agent.config_path.read_text().replace(with_secrets, project_toml)
                                     .replace(seed, project_toml))
        agent.proc.send_signal(signal.SIGHUP)

    # Secrets no longer permitted: the app, in sync a moment ago, is refused at once (not a poll later).
    reload(seed)
    (refused,) = await eventually(lambda: conditions(agent, name, "SyncError"), within=15, what="the new rule")
    assert refused == f"Secret/{namespace}/creds is not permitted in project {project} (namespaceResourceWhitelist)"

    # Git drops the Secret: it is outside the project, so it is left in place, and the app is Synced.
    second = repo.commit_and_push({"app/secret.yaml": None}, "no Secret")
    assert await agent.post(f"/api/v1/applications/{name}/refresh") == 202
    await eventually(lambda: agent.synced(name, second), within=30, what="the app synced without pruning")
    assert await kube.get(ref("Secret", "creds", namespace)) is not None, "pruned although outside the project"

    # Secrets permitted again: the object now inside the project is pruned as Git says.
    reload(with_secrets)

    async def pruned() -> bool:
        return await kube.get(ref("Secret", "creds", namespace)) is None

    await eventually(pruned, within=15, what="the Secret pruned under the restored rule")
    assert not any("not-a-real-one" in line for line in agent.logs.splitlines())


async def test_a_deny_window_holds_automated_syncs_and_lets_manual_ones_through_with_manual_sync(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient
) -> None:
    tag = secrets.token_hex(3)
    lenient, strict = f"lenient-{tag}", f"strict-{tag}"
    url = git_server.url(repo.name)
    repo.commit_and_push({"lenient/cm.yaml": configmap(f"lenient-{tag}", {}),
                          "strict/cm.yaml": configmap(f"strict-{tag}", {})}, "two apps")

    def window(manual: bool) -> str:  # open now, whenever the test runs: every minute, for an hour
        return (f'[[projects.sync_windows]]\nkind = "deny"\nschedule = "* * * * *"\nduration = "1h"\n'
                f'applications = ["*-{tag}"]\nmanual_sync = {json.dumps(manual)}\n\n')

    def app(name: str, project: str) -> str:
        return application_toml(name, url, namespace=namespace, path=name.rpartition("-")[0], revision="main",
                                extra={"project": json.dumps(project)}, sync_policy=AUTOMATED_PRUNE)

    agent = await start_agent(
        seed_project_toml(name=f"night-{tag}", repo=url, namespace=namespace, windows=window(True))
        + seed_project_toml(name=f"freeze-{tag}", repo=url, namespace=namespace, windows=window(False))
        + app(lenient, f"night-{tag}") + app(strict, f"freeze-{tag}"))
    await agent.wait_up()

    for name in (lenient, strict):
        (held,) = await eventually(lambda n=name: conditions(agent, n, "SyncWindowWarning"), within=30,
                                   what=f"{name} held by the window")
        assert held.startswith("sync blocked by deny window '* * * * *' for 1h (UTC) of project ")
        assert "; syncs are allowed again at " in held
        shown = await agent.app(name)
        assert shown is not None and shown["sync_status"] == "OutOfSync" and shown["history"] == []
        assert held in shown["message"], "the status says why it is not syncing"
        assert await kube.get(ref("ConfigMap", name, namespace)) is None
    # Held is not failed: no error, no attempt recorded, no backoff.
    assert not [e for e in agent.events if e.get("app") in (lenient, strict) and e.get("level") == "error"]

    # A person's sync: through the window that says manual_sync = true, refused (403, naming it) by the other.
    status, answer = await agent.post_json(f"/api/v1/applications/{lenient}/sync", {})
    assert status == 200 and answer["phase"] == "Succeeded", answer
    assert await kube.get(ref("ConfigMap", lenient, namespace)) is not None
    status, answer = await agent.post_json(f"/api/v1/applications/{strict}/sync", {})
    assert status == 403, answer
    assert answer["error"].startswith(f"cannot sync: sync blocked by deny window '* * * * *' for 1h (UTC) of "
                                      f"project freeze-{tag}; syncs are allowed again at "), answer
    assert await kube.get(ref("ConfigMap", strict, namespace)) is None
    shown = await agent.app(lenient)
    assert shown is not None and [(e["trigger"], e["phase"]) for e in shown["history"]] == [("manual", "Succeeded")]
    refusals = [e for e in agent.events if e.get("msg") == "sync refused by a sync window"]
    assert [e["app"] for e in refusals] == [strict]
    calls = [(e["subject"], e["path"]) for e in agent.events if e.get("msg") == "api request"]
    assert ("anonymous", f"/api/v1/applications/{strict}/sync") in calls, "without [auth], still on record"


async def test_objects_of_other_apps_are_never_taken_over_and_adopt_existing_false_adopts_nothing(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient
) -> None:
    tag = secrets.token_hex(3)
    careful, eager = f"careful-{tag}", f"eager-{tag}"
    url = git_server.url(repo.name)
    theirs = f"ledger-{tag}"  # an app of another agent: its objects carry its label and tracking id
    await kube.apply({**ref("ConfigMap", "theirs", namespace), "data": {"from": "ledger"}, "metadata": {
        "name": "theirs", "namespace": namespace, "labels": {"gitops-agent.io/app": theirs},
        "annotations": {"gitops-agent.io/tracking-id": f"{theirs}:/ConfigMap:{namespace}/theirs"}}})
    for name in ("unmanaged", "adoptable"):
        await kube.apply({**ref("ConfigMap", name, namespace), "data": {"from": "a person"}})
    repo.commit_and_push({
        "careful/theirs.yaml": configmap("theirs", {"from": careful}),
        "careful/unmanaged.yaml": configmap("unmanaged", {"from": careful}),
        "careful/own.yaml": configmap("own", {"from": careful}),
        "eager/adoptable.yaml": configmap("adoptable", {"from": eager}),
    }, "two apps, three existing objects")
    strict = f"""[[projects]]
name = "strict-{tag}"
source_repos = ["*"]
destinations = [{{ server = "*", namespace = "*" }}]
adopt_existing = false

"""
    agent = await start_agent(
        strict + application_toml(careful, url, namespace=namespace, path="careful", revision="main",
                                  extra={"project": json.dumps(f"strict-{tag}")}, sync_policy=AUTOMATED_PRUNE)
        + application_toml(eager, url, namespace=namespace, path="eager", revision="main",
                           sync_policy=AUTOMATED_PRUNE))

    async def warned() -> list[str] | None:
        found = await conditions(agent, careful, "SharedResourceWarning")
        return found if found and len(found) == 2 else None

    warnings = sorted(await eventually(warned, within=30, what="both refusals shown"))
    assert warnings == [
        f"ConfigMap/{namespace}/theirs is owned by application '{theirs}', which applied it first: not applied",
        f"ConfigMap/{namespace}/unmanaged exists and no application manages it; the project does not allow "
        "adopting it (adopt_existing = false)",
    ]
    await eventually(lambda: agent.synced(eager), within=30, what="the default project's app adopted its object")
    await eventually(lambda: kube.get(ref("ConfigMap", "own", namespace)), within=30, what="the app's own object")

    for name, data, owner in (("theirs", "ledger", theirs), ("unmanaged", "a person", None),
                              ("adoptable", eager, eager)):
        live = await kube.get(ref("ConfigMap", name, namespace))
        assert live is not None and live["data"] == {"from": data}, live
        assert (live["metadata"].get("labels") or {}).get("gitops-agent.io/app") == owner, live["metadata"]
