"""The web UI in a real headless Chromium (Debian's, driven by Playwright) against a real agent on the
local cluster: the list, an app's resources by kind, drift shown with its diff, a deployer's sync,
a viewer without buttons, log-in and log-out by token, and no error in the browser's console.

With GITOPS_AGENT_UI_SCREENSHOTS=DIR the test saves the list and an app page there
(scripts/ui-screenshots makes docs/images/ui-*.png that way).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from agent.kube import KubeClient
from agent.server.ui import CONTENT_SECURITY_POLICY
from tests.integration.helpers import eventually
from tests.integration.test_access_control import auth_toml, tokens_file
from tests.integration.test_cli_app import edit_configmap, live_configmap
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.browser import chromium_path, screenshot_dir
from tests.support.gitserver import GitServer, WorkTree
from tests.support.payments_repo import payments_repo

SERVICES = ("payment-service", "ledger-service")
WAIT_MS = 20_000  # the page polls every 3 s; a sync on a busy machine takes a few more


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield chromium
        await chromium.close()


class Console:
    """What the browser's console shows as errors, and uncaught exceptions of the page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"{message.text} at {message.location}")


async def new_page(browser: Browser) -> tuple[Page, Console]:
    context = await browser.new_context(viewport={"width": 1280, "height": 760})
    page = await context.new_page()
    return page, Console(page)


async def start_payments(start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str,
                         tag: str, config: str = "") -> tuple[AgentProcess, dict[str, str]]:
    """Two of the payments team's services (dev overlays) as apps named `<service>-<tag>`, self-heal off."""
    wanted = tuple(f"apps/{service}/" for service in SERVICES)
    files = {path: text for path, text in payments_repo().items() if path.startswith(wanted)}
    repo.commit_and_push(files, "payments: dev overlays")
    apps = {service: f"{service}-{tag}" for service in SERVICES}
    body = config + "".join(
        application_toml(name, git_server.url(repo.name), namespace=namespace, path=f"apps/{service}/overlays/dev",
                         revision="main", sync_policy={"self_heal": "false"}) for service, name in apps.items())
    agent = await start_agent(body)
    await agent.wait_up()
    return agent, apps


async def log_in(page: Page, base_url: str, token: str) -> None:
    await page.goto(base_url + "/")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


async def test_a_deployer_sees_the_apps_the_drift_and_syncs_it_back(
    browser: Browser, start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient,
    namespace: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    if screenshot_dir() is not None:  # run alone (scripts/ui-screenshots): the names of the README's tour
        tag, namespace = "dev", await docs_namespace(kube)
    token_file = tmp_path / "tokens.csv"
    tokens = tokens_file(token_file, "default")
    agent, apps = await start_payments(start_agent, repo, git_server, namespace, tag, auth_toml(token_file))
    payment = apps["payment-service"]
    for name in apps.values():
        await eventually(lambda name=name: admin_sees_synced(agent, tokens["admin"], name), within=60,
                         what=f"{name} synced and healthy")

    page, console = await new_page(browser)
    await log_in(page, agent.base_url, tokens["deployer"])
    await expect(page.locator("[data-user]")).to_have_text("dan")
    for name in apps.values():
        row = page.locator(f'tr[data-app="{name}"]')
        await expect(row.locator('[data-col="sync"]')).to_contain_text("Synced", timeout=WAIT_MS)
        await expect(row.locator('[data-col="health"]')).to_contain_text("Healthy", timeout=WAIT_MS)
        await expect(row).to_contain_text("payments: dev overlays")  # the commit message, with its author
    await page.fill('input[type="search"]', "ledger")
    await expect(page.locator("tr[data-app]")).to_have_count(1)
    await page.fill('input[type="search"]', "")
    await expect(page.locator("tr[data-app]")).to_have_count(2)
    if (shots := screenshot_dir()) is not None:
        await page.set_viewport_size({"width": 1280, "height": 300})  # the page as high as its content
        await page.screenshot(path=str(shots / "ui-list.png"), full_page=True)

    await page.locator(f'tr[data-app="{payment}"] a').click()
    await expect(page).to_have_url(re.compile(f"/applications/{payment}$"))
    for kind, name in (("Deployment", "payment-service"), ("Service", "payment-service"),
                       ("ConfigMap", "payment-service-config")):
        group = page.locator(f'tbody[data-kind="{kind}"]')
        await expect(group.locator(f'tr[data-resource="{kind}/{namespace}/{name}"]')).to_contain_text("Synced")
    await expect(page.locator('[data-diffs="none"]')).to_be_visible()
    await expect(page.locator('[data-action="sync"]')).to_be_visible()
    await expect(page.locator('[data-action="rollback"]')).to_have_count(0)  # a deployer may not roll back

    # An edit made outside Git: OutOfSync, with the diff of that object, then the Sync button.
    await edit_configmap(kube, namespace, "payment-service-config", {"LOG_LEVEL": "debug"})
    diff = page.locator(f'[data-diff="ConfigMap/{namespace}/payment-service-config"]')
    await expect(diff).to_contain_text("-  LOG_LEVEL: debug", timeout=WAIT_MS)
    await expect(diff).to_contain_text("+  LOG_LEVEL: info")
    await expect(page.locator(f'tr[data-resource="ConfigMap/{namespace}/payment-service-config"]')).to_contain_text(
        "OutOfSync")
    await expect(page.locator("h1 [data-status]").first).to_have_text(re.compile("OutOfSync"))
    if shots is not None:
        await page.screenshot(path=str(shots / "ui-app.png"), full_page=True)
    await page.click('[data-action="sync"]')
    await expect(page.locator(".result.ok")).to_contain_text("Succeeded", timeout=WAIT_MS)
    await expect(page.locator('[data-diffs="none"]')).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("h1 [data-status]").first).to_have_text(re.compile("Synced"), timeout=WAIT_MS)
    assert (await live_configmap(kube, namespace, "payment-service-config"))["LOG_LEVEL"] == "info"
    latest = page.locator("table.history tbody tr").first
    await expect(latest).to_contain_text("manual")
    await expect(latest).to_contain_text("dan")

    await page.go_back()  # the browser's own history goes back to the list
    await expect(page.locator(f'tr[data-app="{payment}"]')).to_be_visible()
    assert console.errors == []


async def docs_namespace(kube: KubeClient) -> str:
    """`payments-dev`, created unless it exists (the screenshots are taken on a cluster of their own)."""
    if await kube.get({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments-dev"}}) is None:
        await kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                                 "metadata": {"name": "payments-dev"}})
    return "payments-dev"


async def admin_sees_synced(agent: AgentProcess, token: str, name: str) -> bool:
    status, text = await agent.request("GET", f"/api/v1/applications/{name}",
                                       headers={"Authorization": f"Bearer {token}"})
    body = json.loads(text) if status == 200 else {}
    return body.get("sync_status") == "Synced" and body.get("health_status") == "Healthy"


async def test_a_viewer_sees_no_sync_buttons_and_a_revoked_token_leads_back_to_log_in(
    browser: Browser, start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    token_file = tmp_path / "tokens.csv"
    tokens = tokens_file(token_file, "default")
    agent, apps = await start_payments(start_agent, repo, git_server, namespace, tag, auth_toml(token_file))
    payment = apps["payment-service"]
    await eventually(lambda: admin_sees_synced(agent, tokens["admin"], payment), within=60, what="synced")

    # The page and its assets need no token, carry the security headers; the data needs a token.
    for path in ("/", f"/applications/{payment}", "/ui/app.js", "/ui/app.css"):
        status, _ = await agent.get(path)
        assert status == 200, path
    status, _ = await agent.get("/api/v1/applications")
    assert status == 401
    status, _ = await agent.get("/ui/nothing.js")
    assert status == 404
    for who, allowed in (("viewer", {"get", "refresh"}), ("deployer", {"get", "refresh", "sync", "resume"}),
                         ("admin", {"get", "refresh", "sync", "resume", "rollback", "override"})):
        status, text = await agent.request("GET", f"/api/v1/applications/{payment}",
                                           headers={"Authorization": f"Bearer {tokens[who]}"})
        permissions = json.loads(text)["permissions"]
        assert {action for action, may in permissions.items() if may} == allowed, (who, permissions)

    page, console = await new_page(browser)
    response = await page.goto(f"{agent.base_url}/applications/{payment}")
    assert response is not None
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    await page.fill("#token", "not-a-token")
    await page.click("button[type=submit]")
    await expect(page.locator(".login [role=alert]")).to_contain_text("does not know this token")
    await page.fill("#token", tokens["viewer"])
    await page.click("button[type=submit]")
    await expect(page.locator(f'tr[data-resource="Deployment/{namespace}/payment-service"]')).to_contain_text(
        "Healthy", timeout=WAIT_MS)
    await expect(page.locator("table.history tbody tr")).to_have_count(1)
    # role:readonly may `get` (a refresh counts as one, as in Argo CD), but the page offers no buttons.
    await expect(page.locator("[data-action]")).to_have_count(0)
    assert console.errors == []

    # The token is revoked while the page polls: the next answer is a 401, and the page asks to log in.
    token_file.write_text("\n".join(line for line in token_file.read_text().splitlines()
                                    if not line.startswith(tokens["viewer"])) + "\n")
    await expect(page.locator(".login [role=alert]")).to_contain_text("refused the token", timeout=WAIT_MS)
    assert await page.evaluate("sessionStorage.length") == 0


async def test_without_auth_the_list_needs_no_log_in(
    browser: Browser, start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    agent, apps = await start_payments(start_agent, repo, git_server, namespace, secrets.token_hex(3))
    page, console = await new_page(browser)
    await page.goto(agent.base_url + "/")
    for name in apps.values():
        await expect(page.locator(f'tr[data-app="{name}"] [data-col="sync"]')).to_contain_text(
            "Synced", timeout=WAIT_MS * 2)
    await expect(page.locator("#token")).to_have_count(0)
    await page.select_option('select[data-filter="sync"]', "OutOfSync")
    await expect(page.locator("tr[data-app]")).to_have_count(0)
    await page.select_option('select[data-filter="sync"]', "Synced")
    await expect(page.locator("tr[data-app]")).to_have_count(2)
    assert console.errors == []
