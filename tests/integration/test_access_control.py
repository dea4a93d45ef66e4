"""The API behind tokens, with a real agent process: who may get, sync, override and roll back which app.

Tokens are in kube's static token file format; roles come from `[auth] policy_csv`, the built-in
`role:readonly` / `role:admin`, and the seed's project roles (`developer` = get + sync, `admin`
= everything), held by users (`g` lines) or by a token's groups (`proj:<project>:<role>`).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.projects import seed_project_toml


class Caller:
    """One HTTP client of the agent's API with (or without) a bearer token."""

    def __init__(self, agent: AgentProcess, token: str | None, *, base_url: str = "", ssl: Any = None) -> None:
        self.base_url, self.ssl = base_url or agent.base_url, ssl
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        # Every POST says it is JSON, also without a body: the API refuses what a browser page could forge.
        headers = {**self.headers, **({"Content-Type": "application/json"} if method == "POST" else {})}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session, session.request(
                method, self.base_url + path, data=data, headers=headers, ssl=self.ssl) as response:
            text = await response.text()
            try:
                decoded: Any = json.loads(text)
            except ValueError:
                decoded = text
            return response.status, decoded, dict(response.headers)

    async def status(self, method: str, path: str, body: Any = None) -> int:
        return (await self.call(method, path, body))[0]


def tokens_file(path: Path, project: str) -> dict[str, str]:
    """A token file for every kind of caller; returns the tokens by role."""
    tokens = {role: f"{role}-{secrets.token_hex(16)}" for role in ("viewer", "deployer", "admin", "ci", "lead")}
    path.write_text("\n".join([
        "# token,user,uid[,groups]",
        f"{tokens['viewer']},vera,1001",
        f"{tokens['deployer']},dan,1002",
        f"{tokens['admin']},ada,1003,\"platform\"",
        f"{tokens['ci']},ci-bot,1004,\"proj:{project}:developer\"",
        f"{tokens['lead']},proj:{project}:admin,1005",
    ]) + "\n")
    return tokens


def auth_toml(token_file: Path, extra: str = "") -> str:
    return f"""[auth]
token_file = {json.dumps(str(token_file))}
policy_csv = \"\"\"
p, role:deployer, applications, get, */*, allow
p, role:deployer, applications, sync, */*, allow
g, vera, role:readonly
g, dan, role:deployer
g, platform, role:admin
\"\"\"
{extra}
"""


async def test_tokens_and_roles_decide_who_may_do_what(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    project, app, other = f"payments-{tag}", f"api-{tag}", f"ledger-{tag}"
    tokens = tokens_file(tmp_path / "tokens.csv", project)
    url = git_server.url(repo.name)
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "1"}),
                                  "other/cm.yaml": configmap("ledger", {})}, "first")
    agent = await start_agent(
        auth_toml(tmp_path / "tokens.csv")
        + seed_project_toml(name=project, repo=url, namespace=namespace)
        + application_toml(app, url, namespace=namespace, path="app", revision="main",
                           extra={"project": json.dumps(project)})
        + application_toml(other, url, namespace=namespace, path="other", revision="main"))
    await agent.wait_up()
    nobody, bad = Caller(agent, None), Caller(agent, "not-a-token")
    viewer, deployer, admin = Caller(agent, tokens["viewer"]), Caller(agent, tokens["deployer"]), \
        Caller(agent, tokens["admin"])
    ci, lead = Caller(agent, tokens["ci"]), Caller(agent, tokens["lead"])

    # Probes and metrics need no token; everything else does.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert await nobody.status("GET", path) in (200, 503), path
    status, body, headers = await nobody.call("GET", "/api/v1/applications")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="gitops-agent"', body
    status, body, headers = await bad.call("POST", f"/api/v1/applications/{app}/sync")
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert await nobody.status("GET", "/no/such/route") == 401

    async def synced(sha: str) -> bool:
        status, body, _ = await admin.call("GET", f"/api/v1/applications/{app}")
        return status == 200 and body["sync_status"] == "Synced" and body["revision"] == sha

    await eventually(lambda: synced(first), within=30, what="the app synced on its own")

    # A viewer reads everything and changes nothing.
    status, body, _ = await viewer.call("GET", "/api/v1/applications")
    assert status == 200 and {a["name"] for a in body} == {app, other}
    status, body, _ = await viewer.call("POST", f"/api/v1/applications/{app}/sync")
    assert status == 403 and body["error"] == f"permission denied: sync applications {project}/{app} (subject vera)"
    assert await viewer.status("POST", f"/api/v1/applications/{app}/refresh") == 202, "refresh counts as get"

    # A deployer syncs (recorded as theirs) but neither rolls back nor syncs another revision.
    status, body, _ = await deployer.call("POST", f"/api/v1/applications/{app}/sync")
    assert status == 200 and body["phase"] == "Succeeded", body
    status, body, _ = await deployer.call("POST", f"/api/v1/applications/{app}/rollback")
    assert status == 403 and "rollback applications" in body["error"]
    status, body, _ = await deployer.call("POST", f"/api/v1/applications/{app}/sync", {"revision": first})
    assert status == 403 and body["error"].startswith(f"permission denied: override applications {project}/{app}")
    assert await deployer.status("POST", f"/api/v1/applications/{app}/sync", {"revision": "main"}) == 200

    # A project role through a token's group: its own project's apps only, and not rollback.
    assert await ci.status("POST", f"/api/v1/applications/{app}/sync") == 200
    assert await ci.status("POST", f"/api/v1/applications/{app}/rollback") == 403
    assert await ci.status("GET", f"/api/v1/applications/{other}") == 403
    status, body, _ = await ci.call("GET", "/api/v1/applications")
    assert status == 200 and [a["name"] for a in body] == [app], "the list shows only what it may get"

    # An admin, and a project admin token, may roll back.
    second = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "2"})}, "second")
    assert await admin.status("POST", f"/api/v1/applications/{app}/refresh") == 202
    await eventually(lambda: synced(second), within=30, what="the second commit synced on its own")
    status, body, _ = await lead.call("POST", f"/api/v1/applications/{app}/rollback", {"revision": first})
    assert status == 200 and body["revision"] == first, body
    assert await lead.status("GET", f"/api/v1/applications/{other}") == 403
    status, body, _ = await admin.call("POST", f"/api/v1/applications/{app}/rollback", {"revision": second})
    assert status == 200 and body["revision"] == second, body

    status, body, _ = await admin.call("GET", f"/api/v1/applications/{app}")
    history = [(entry["trigger"], entry["initiated_by"]) for entry in body["history"]]
    assert history[:6] == [("rollback", "ada"), ("rollback", f"proj:{project}:admin"), ("auto", ""),
                           ("manual", "ci-bot"), ("manual", "dan"), ("manual", "dan")], history
    assert history[-1] == ("auto", "")
    requests = [(e["subject"], e["action"]) for e in agent.events if e.get("msg") == "api request"]
    assert ("dan", "sync") in requests and ("ada", "rollback") in requests
    denied = [e for e in agent.events if e.get("msg") == "api request denied"]
    assert {e["subject"] for e in denied} >= {"vera", "dan", "ci-bot"}
    assert not any(token in agent.logs for token in tokens.values()), "tokens never reach the log"

    # The CLI sends the token from the environment.
    code, out, err = await cli("history", app, "--server", agent.base_url, env={"GITOPS_AGENT_TOKEN": tokens["viewer"]})
    assert code == 0 and "rollback" in out, err
    code, _, err = await cli("history", app, "--server", agent.base_url, env={})
    assert code == 4 and "HTTP 401" in err, "no token: exit 4 (token or permission)"


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("GITOPS_AGENT_TOKEN")}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, env={**environ, **env})
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_an_open_api_refuses_to_listen_beyond_loopback_unless_told(start_agent: StartAgent) -> None:
    refused = await start_agent("", name="refused", agent_keys={"listen": '"0.0.0.0:{port}"'})
    assert await refused.proc.wait() == 2
    assert "agent.listen: '0.0.0.0:" in refused.logs and "insecure_no_auth = true" in refused.logs
    assert "[auth]" in refused.logs

    open_ = await start_agent("", name="open", agent_keys={"listen": '"0.0.0.0:{port}"', "insecure_no_auth": "true"})
    await open_.wait_up()
    warnings = [e for e in open_.events if e.get("level") == "warning" and "insecure_no_auth" in e.get("msg", "")]
    assert len(warnings) == 1 and "anyone who can reach it" in warnings[0]["msg"]
    assert (await open_.get("/api/v1/applications"))[0] == 200


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "tls.key", directory / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


async def test_tls_and_metrics_behind_tokens(start_agent: StartAgent, tmp_path: Path) -> None:
    import ssl

    cert, key = _certificate(tmp_path)
    tokens = tokens_file(tmp_path / "tokens.csv", "p")
    extra = f"metrics_auth = true\ntls_cert_file = {json.dumps(str(cert))}\ntls_key_file = {json.dumps(str(key))}\n"
    agent = await start_agent(auth_toml(tmp_path / "tokens.csv", extra))
    https = agent.base_url.replace("http://", "https://")
    context = ssl.create_default_context(cafile=str(cert))

    async def up() -> bool:
        agent.check_alive()
        try:
            return await Caller(agent, None, base_url=https, ssl=context).status("GET", "/healthz") == 200
        except aiohttp.ClientConnectionError:
            return False

    await eventually(up, within=60, what="the agent serving HTTPS")
    viewer, nobody = Caller(agent, tokens["viewer"], base_url=https, ssl=context), \
        Caller(agent, None, base_url=https, ssl=context)
    assert await nobody.status("GET", "/metrics") == 401, "metrics_auth = true"
    assert await viewer.status("GET", "/metrics") == 200
    assert await viewer.status("GET", "/api/v1/applications") == 200
    try:
        plain = await agent.get("/healthz")
    except aiohttp.ClientError:
        plain = (0, "")
    assert plain[0] != 200, "no plain HTTP next to HTTPS"


async def test_new_tokens_and_policies_take_effect_without_a_restart(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, tmp_path: Path
) -> None:
    import signal

    name = f"api-{secrets.token_hex(3)}"
    token_path = tmp_path / "tokens.csv"
    tokens = tokens_file(token_path, "p")
    url = git_server.url(repo.name)
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {})}, "first")
    agent = await start_agent(auth_toml(token_path) + application_toml(name, url, namespace=namespace, path="app",
                                                                      revision="main"))
    await agent.wait_up()
    viewer = Caller(agent, tokens["viewer"])
    assert await viewer.status("POST", f"/api/v1/applications/{name}/resume") == 403

    # A token added to the file works within a second or two; no signal needed.
    newcomer = f"newcomer-{secrets.token_hex(16)}"
    with token_path.open("a") as file:
        file.write(f"{newcomer},nora,2001,\"platform\"\n")

    async def admitted() -> bool:
        return await Caller(agent, newcomer).status("GET", f"/api/v1/applications/{name}") == 200

    await eventually(admitted, within=10, interval=0.2, what="the new token accepted")

    # A policy changed in the file takes effect on SIGHUP.
    agent.config_path.write_text(agent.config_path.read_text().replace("g, vera, role:readonly", "g, vera, role:admin"))
    agent.proc.send_signal(signal.SIGHUP)

    async def promoted() -> bool:
        return await viewer.status("POST", f"/api/v1/applications/{name}/resume") == 200

    await eventually(promoted, within=10, interval=0.2, what="vera promoted by the reloaded policy")
    reloads = [e["msg"] for e in agent.events if e.get("msg", "").startswith("configuration reloaded")]
    assert reloads and reloads[-1].endswith("[auth]"), reloads
