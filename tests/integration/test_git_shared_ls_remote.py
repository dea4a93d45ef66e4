"""100 apps on one repository: one ls-remote per poll interval, one fetch per new commit.

The real controller, reconciler, git server and cluster, in-process. Requests are
counted at the git server. dulwich speaks protocol v2 over HTTP, so one ls-remote
is `GET info/refs` + `POST ls-refs`, and a fetch opens with the same pair before
its `POST git-upload-pack`: ls-remotes = ls-refs requests - fetch operations.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import Path

from agent.config import AppSpec
from agent.controller import Controller
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.runtime import build_controller
from tests.integration.helpers import configmap, eventually, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total

APPS = 100
POLL = 2.0


def reconciles(metrics: Metrics) -> int:
    return int(sample_total(metrics, "gitops_agent_reconcile_total"))


def at_revision(controller: Controller, sha: str) -> bool:
    return all(s.revision is not None and s.revision.sha == sha and s.reconciled_at for s in controller.statuses())


async def test_hundred_apps_on_one_repo_make_one_ls_remote_per_interval(
    repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str, cluster: LocalCluster, tmp_path: Path
) -> None:
    files = {f"apps/a{i:03d}/cm.yaml": configmap(f"cm-{i:03d}", {"v": "1"}) for i in range(APPS)}
    first = repo.commit_and_push(files, "a hundred apps")
    url = git_server.url(repo.name)
    # App labels are matched across namespaces: a name another run used may still own objects in a
    # namespace being deleted, so the names are this test's own.
    prefix = f"shared-{secrets.token_hex(2)}"
    specs = [AppSpec(name=f"{prefix}-{i:03d}", repo=url, revision="main", path=f"apps/a{i:03d}", namespace=namespace)
             for i in range(APPS)]
    settings = settings_for(specs, state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig, poll_interval=POLL)
    settings = replace(settings, agent=replace(settings.agent, poll_jitter=0.5, max_concurrent_fetches=4))
    metrics = Metrics()
    controller = build_controller(settings, kube, metrics)
    git_server.reset_counts()
    started = time.monotonic()
    controller.start()
    try:
        await eventually(lambda: at_revision(controller, first), within=60, what="all apps at the commit")
        first_round = time.monotonic() - started
        ls_refs, fetches = git_server.count(repo=repo.name, kind="ls-refs"), git_server.count(repo=repo.name,
                                                                                              kind="fetch")
        # One ls-remote per poll interval: a first round slower than the interval (a loaded machine)
        # rightly asks again once the answer is older than that.
        assert fetches == 1, f"first round: one fetch for {APPS} apps, not {fetches}"
        assert 1 <= ls_refs - fetches <= first_round / POLL + 1, (
            f"first round: {ls_refs - fetches} ls-remotes in {first_round:.1f}s for {APPS} apps")

        git_server.reset_counts()
        window_start, before = time.monotonic(), reconciles(metrics)
        await eventually(lambda: reconciles(metrics) - before >= 2 * APPS, within=3 * POLL + 0.5,
                         interval=0.05, what=f"{2 * APPS} polls")
        window = time.monotonic() - window_start
        polls = reconciles(metrics) - before
        ls_remotes = git_server.count(repo=repo.name, kind="ls-refs")
        assert git_server.count(repo=repo.name, kind="fetch") == 0, "nothing moved: nothing fetched"
        assert polls >= 2 * APPS, f"the apps polled ({polls} reconciles)"
        assert 1 <= ls_remotes <= window / POLL + 1, f"{ls_remotes} ls-remotes in {window:.1f}s"

        second = repo.commit_and_push({"apps/a000/cm.yaml": configmap("cm-000", {"v": "2"})}, "one app changes")
        git_server.reset_counts()
        await eventually(lambda: at_revision(controller, second), within=30, what="all apps at the new commit")
        assert git_server.count(repo=repo.name, kind="fetch") == 1, "the new commit is fetched once for 100 apps"
    finally:
        await controller.stop()
    print(f"\n{APPS} apps: first round {first_round:.2f}s; {polls} polls in {window:.1f}s "
          f"(poll_interval {POLL}s) made {ls_remotes} ls-remotes and 0 fetches")
