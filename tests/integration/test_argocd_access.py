"""API access follows AppProjects adopted from Git: a role an AppProject declares in Git grants its
groups access to the project's apps once the project is adopted, and not before; the project list
shows the caller only what it may see."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.integration.argocd_support import application, root_toml
from tests.integration.helpers import configmap, eventually
from tests.integration.test_access_control import Caller
from tests.support.agent import StartAgent
from tests.support.gitserver import GitServer, WorkTree


def app_project(name: str, group: str) -> str:
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: {name}\nspec:\n"
            "  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n  roles:\n"
            f"    - name: developer\n      groups: [{group}]\n      policies:\n"
            f"        - p, proj:{name}:developer, applications, get, {name}/*, allow\n")


async def test_an_adopted_app_projects_roles_grant_access(start_agent: StartAgent, git_server: GitServer,
                                                         repo: WorkTree, namespace: str, tmp_path: Path) -> None:
    tag, url = secrets.token_hex(3), git_server.url(repo.name)
    root, service, team, group = f"root-{tag}", f"svc-{tag}", f"team-{tag}", f"ci-{tag}"
    repo.commit_and_push({"apps/svc/cm.yaml": configmap("svc-config", {"a": "1"}),
                          "argocd/svc.yaml": application(service, url, path="apps/svc", namespace=namespace,
                                                         project=team)}, "an app of a project not declared yet")
    token, admin = f"ci-{secrets.token_hex(12)}", f"admin-{secrets.token_hex(12)}"
    (tmp_path / "tokens.csv").write_text(f'{token},ci-bot,2001,"{group}"\n{admin},ada,2002,"platform"\n')
    config = (f'[auth]\ntoken_file = {json.dumps(str(tmp_path / "tokens.csv"))}\n'
              'policy_csv = "g, platform, role:admin"\n\n') + root_toml(root, url)
    agent = await start_agent(config, poll_interval="2s")
    await agent.wait_up()
    ci, ada = Caller(agent, token), Caller(agent, admin)

    async def listed() -> bool:
        status, apps, _ = await ada.call("GET", "/api/v1/applications")
        return status == 200 and service in {app["name"] for app in apps}

    await eventually(listed, within=30, what="the adopted app listed")
    assert await ci.status("GET", f"/api/v1/applications/{service}") == 403

    repo.commit_and_push({"argocd/project.yaml": app_project(team, group)}, "the project, with a role for ci")

    async def allowed() -> bool:
        return await ci.status("GET", f"/api/v1/applications/{service}") == 200

    await eventually(allowed, within=30, what="the adopted project's role granting access")
    assert await ci.status("GET", f"/api/v1/applications/{root}") == 403
    status, projects, _ = await ci.call("GET", "/api/v1/projects")
    assert status == 200
    assert [(p["name"], p["parent"], p["applications"]) for p in projects] == [(team, root, [service])]
    status, everything, _ = await ada.call("GET", "/api/v1/projects")
    assert {p["name"] for p in everything} == {"default", team}
