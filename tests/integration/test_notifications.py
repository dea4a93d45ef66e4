"""Notifications (issue 20), with the agent as users run it, a real cluster, a real git server, and
real receivers on loopback: a Slack-compatible chat.postMessage, an SMTP server, a webhook.

Each notification goes out once per trigger, app and oncePer value: a failing revision
retried, a restart, a reload, a receiver answering 500 first send nothing twice; a
receiver that hangs holds up no reconcile.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.receivers import TOKEN, Answer, SlackReceiver, SmtpReceiver, WebhookReceiver

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"
ENV = {"SLACK_BOT_TOKEN": TOKEN}
FAST_DELIVERY = 'timeout = "2s"\nretry_limit = 3\nretry_backoff = "100ms"\n'


def seed_notifications(slack: SlackReceiver, smtp: SmtpReceiver) -> str:
    """The seed's setup exactly as docs/notifications.md shows it, pointed at the receivers on loopback."""
    text = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)[0]
    for old, new in (
        ('context = { argocdUrl = "https://gitops.example.com" }\n',
         'context = { argocdUrl = "https://gitops.example.com" }\n' + FAST_DELIVERY),
        ('token_env = "SLACK_BOT_TOKEN"', f'api_url = "{slack.api_url}"\ntoken_env = "SLACK_BOT_TOKEN"'),
        ('host = "smtp.example.com"', 'host = "127.0.0.1"\ntls = "none"  # aiosmtpd on loopback, no TLS'),
        ("port = 587", f"port = {smtp.port}"),
        ('username = "gitops"\npassword_env = "SMTP_PASSWORD"\n', ""),
    ):
        assert old in text, f"docs/notifications.md's seed example no longer has {old!r}"
        text = text.replace(old, new, 1)
    return text


def app_toml(name: str, url: str, namespace: str, *, path: str = "app", extra: dict[str, str] | None = None,
             retry: str = "") -> str:
    policy = {"retry": retry} if retry else None
    return application_toml(name, url, namespace=namespace, path=path, revision="main", extra=extra,
                            sync_policy=policy)


def invalid_deployment(name: str) -> str:
    """A Deployment the API server refuses (422): every sync of it fails."""
    doc = yaml.safe_load(configmap(name, {}))
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": -1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "main", "image": "registry.example.com/x:1"}]}}}}
    return yaml.safe_dump(doc)


def failing_pod(name: str) -> str:
    """A pod that runs to completion and fails (the local cluster's kwok stage): health Degraded."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": {"local-cluster.test/outcome": "Failed",
                                                   "local-cluster.test/message": "migration failed"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example.com/x:1"}]},
    })


async def failed_attempts(agent: AgentProcess, name: str, sha: str) -> int:
    _, body = await agent.get_json(f"/api/v1/applications/{name}")
    history = (body or {}).get("history") or []
    return sum(1 for entry in history if entry["revision"] == sha and entry["phase"] == "Failed")


async def stop_cleanly(agent: AgentProcess) -> None:
    """SIGTERM: in-flight deliveries finish (or are dropped and counted) before the process ends."""
    assert await agent.stop() == 0, agent.log_tail()
    assert "Traceback" not in agent.logs
    assert not [e for e in agent.events if "unexpectedly" in e["msg"]], agent.log_tail()


async def test_seed_slack_and_email_once_each_through_retries_a_500_and_a_restart(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str,
    slack: SlackReceiver, smtp: SmtpReceiver,
) -> None:
    name = f"payments-{secrets.token_hex(3)}"
    url = git_server.url(repo.name)
    good = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"VERSION": "1"})}, "good")
    config = seed_notifications(slack, smtp) + app_toml(
        name, url, namespace, retry='{ limit = 3, backoff_duration = "100ms", backoff_factor = 1 }')
    slack.fail_next.append(Answer(500))  # the first message is answered 500, then taken
    agent = await start_agent(config, env=ENV)

    await eventually(lambda: slack.messages, within=30, what="the success message")
    (succeeded,) = slack.messages
    assert succeeded["channel"] == "payments-deployments"
    assert succeeded["text"] == f"Application {name} sync Succeeded.\nRevision: {good}\n✅"
    assert len(slack.requests) == 2, "one 500, one accepted"

    bad = repo.commit_and_push({"app/api.yaml": invalid_deployment("api")}, "bad")
    await agent.refresh(name)
    # Polls are a minute apart: the retries come from the retry policy's backoff alone.
    await eventually(lambda: _retried(agent, name, bad, 4), within=30, what="one sync and three retries, all failed")
    await eventually(lambda: len(slack.messages) == 2 and smtp.mails, within=15, what="the failure messages")
    failure = slack.messages[1]
    assert failure["text"] == f"Application {name} sync Failed.\nRevision: {bad}\n❌"
    (mail,) = smtp.mails
    assert mail["To"] == "payments-oncall@example.com"
    assert mail["Subject"] == f"Application {name} sync Failed"

    await stop_cleanly(agent)  # whatever was decided has been sent by now (or counted as dropped)
    assert (len(slack.messages), len(smtp.mails)) == (2, 1)

    again = await start_agent(config, env=ENV)  # the same state directory
    await again.wait_up()
    for _ in range(2):
        asked = time.monotonic()
        await again.refresh(name)
        await eventually(lambda asked=asked: _reconciled_after(again, name, asked), within=20,  # type: ignore[misc]
                         what="a reconcile after the restart")
    await stop_cleanly(again)
    assert (len(slack.messages), len(smtp.mails)) == (2, 1), "a restart repeats nothing"
    assert "dropped" not in again.logs


async def _retried(agent: AgentProcess, name: str, sha: str, count: int) -> bool:
    return await failed_attempts(agent, name, sha) >= count


async def _reconciled_after(agent: AgentProcess, name: str, since_monotonic: float) -> bool:
    app = await agent.app(name)
    wall = time.time() - (time.monotonic() - since_monotonic)
    return bool(app and app["reconciled_at"] and app["reconciled_at"] > wall)


async def test_a_receiver_that_hangs_holds_up_no_reconcile(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, slack: SlackReceiver,
) -> None:
    name = f"hung-{secrets.token_hex(3)}"
    url = git_server.url(repo.name)
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"VERSION": "1"})}, "one")
    slack.hang = True
    config = f"""
[notifications]
timeout = "5s"
retry_limit = 5

[[notifications.services]]
name = "slack"
type = "slack"
token_env = "SLACK_BOT_TOKEN"
api_url = "{slack.api_url}"

[[notifications.subscriptions]]
recipients = ["slack:payments"]
triggers = ["on-sync-running", "on-sync-succeeded", "on-deployed"]
""" + app_toml(name, url, namespace)
    agent = await start_agent(config, env=ENV)
    await eventually(lambda: agent.synced(name, first), within=30, what="the first sync")
    await eventually(lambda: len(slack.requests) >= 1, within=10, what="a message to hang on")
    durations = []
    for version in range(2, 5):
        sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"VERSION": str(version)})}, "next")
        started = time.monotonic()
        await agent.refresh(name)
        await eventually(lambda sha=sha: agent.synced(name, sha), within=10, what=f"version {version} synced")
        durations.append(time.monotonic() - started)
    print(f"refresh-to-synced with a hanging Slack: {', '.join(f'{d:.2f}s' for d in durations)}", file=sys.stderr)
    assert slack.messages == [], "every request is still held"
    await stop_cleanly(agent)
    assert "notifications not delivered: the agent is stopping" in agent.logs


async def test_health_degraded_is_told_once_to_an_annotation_subscriber(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, slack: SlackReceiver,
) -> None:
    name = f"degrading-{secrets.token_hex(3)}"
    url = git_server.url(repo.name)
    repo.commit_and_push({"app/migrate.yaml": failing_pod("migrate")}, "a pod that fails")
    annotations = '{ "notifications.argoproj.io/subscribe.on-health-degraded.slack" = "payments-alerts" }'
    config = f"""
[notifications]
{FAST_DELIVERY}
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "SLACK_BOT_TOKEN"
api_url = "{slack.api_url}"
""" + app_toml(name, url, namespace, extra={"annotations": annotations})
    agent = await start_agent(config, env=ENV)
    await eventually(lambda: slack.messages, within=40, what="the Degraded message")
    for _ in range(2):
        asked = time.monotonic()
        await agent.refresh(name)
        await eventually(lambda asked=asked: _reconciled_after(agent, name, asked), within=20,  # type: ignore[misc]
                         what="another reconcile")
    await stop_cleanly(agent)
    (message,) = slack.messages
    assert message["channel"] == "payments-alerts"
    assert message["text"] == f":exclamation: Application {name} has degraded."
    fields = {f["title"]: f["value"] for f in message["attachments"][0]["fields"]}
    assert fields["Health Status"] == "Degraded"


async def test_catalog_created_running_succeeded_deployed_unknown_failed_deleted_over_a_webhook(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str,
    webhook_receiver: WebhookReceiver,
) -> None:
    suffix = secrets.token_hex(3)
    first, added = f"first-{suffix}", f"added-{suffix}"
    url = git_server.url(repo.name)
    sha = repo.commit_and_push({"one/cm.yaml": configmap("one", {"k": "v"}),
                                "two/cm.yaml": configmap("two", {"k": "v"})}, "two apps")
    notifications = f"""
[notifications]
{FAST_DELIVERY}
[[notifications.services]]
name = "oncall"
type = "webhook"
url = "{webhook_receiver.url}"

[[notifications.subscriptions]]
recipients = ["oncall"]
triggers = ["on-created", "on-deleted", "on-deployed", "on-health-degraded", "on-sync-failed", "on-sync-running",
            "on-sync-status-unknown", "on-sync-succeeded"]
applications = ["*-{suffix}"]
"""
    agent = await start_agent(notifications + app_toml(first, url, namespace, path="one"), env=ENV)
    await eventually(lambda: agent.synced(first, sha), within=30, what="the first app synced")
    await eventually(lambda: len(webhook_receiver.triggers(first)) >= 3, within=15, what="its sync messages")
    assert sorted(webhook_receiver.triggers(first)) == ["on-deployed", "on-sync-running", "on-sync-succeeded"], \
        "no on-created for an app there at the first start (a new state directory says nothing about news)"

    header = agent.config_path.read_text().removesuffix(notifications + app_toml(first, url, namespace, path="one"))
    body = notifications + app_toml(first, url, namespace, path="one") + app_toml(added, url, namespace, path="two")
    await _reload(agent, header + body, count=1)
    await eventually(lambda: len(webhook_receiver.triggers(added)) >= 4, within=30, what="the added app's messages")
    assert webhook_receiver.triggers(added)[0] == "on-created"
    assert sorted(webhook_receiver.triggers(added)) == ["on-created", "on-deployed", "on-sync-running",
                                                        "on-sync-succeeded"]

    repo.commit_and_push({"two/cm.yaml": "kind: [unclosed\n"}, "broken YAML")
    await agent.refresh(added)
    await eventually(lambda: "on-sync-status-unknown" in webhook_receiver.triggers(added), within=20,
                     what="sync status Unknown")

    failing = repo.commit_and_push({"two/cm.yaml": configmap("two", {"k": "v"}),
                                    "two/api.yaml": invalid_deployment("api")}, "a revision that fails")
    await agent.refresh(added)
    await eventually(lambda: "on-sync-failed" in webhook_receiver.triggers(added), within=20, what="the failure")
    failed = next(b for b in webhook_receiver.bodies if b["trigger"] == "on-sync-failed")
    assert f"The sync operation of application {added} has failed at " in failed["message"]
    assert "spec.replicas" in failed["message"] and failing != sha

    await _reload(agent, header + notifications + app_toml(first, url, namespace, path="one"), count=2)
    await eventually(lambda: "on-deleted" in webhook_receiver.triggers(added), within=15, what="on-deleted")
    await stop_cleanly(agent)
    assert Counter(webhook_receiver.triggers(added)) == Counter(
        ["on-created", "on-sync-running", "on-sync-succeeded", "on-deployed", "on-sync-status-unknown",
         "on-sync-running", "on-sync-failed", "on-deleted"])
    assert Counter(webhook_receiver.triggers(first)) == Counter(["on-sync-running", "on-sync-succeeded",
                                                                 "on-deployed"]), "the first app saw nothing new"
    unknown = next(b for b in webhook_receiver.bodies if b["trigger"] == "on-sync-status-unknown")
    assert unknown["message"].startswith(f"Application {added} sync is 'Unknown'.\n* ")
    assert all(h["X-Notification-Id"] for h in webhook_receiver.headers)


async def _reload(agent: AgentProcess, text: str, *, count: int) -> None:
    agent.config_path.write_text(text)
    agent.proc.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return sum(1 for e in agent.events if e["msg"].startswith("configuration reload")) >= count

    await eventually(reloaded, within=15, what=f"reload {count}")


async def test_a_bad_template_is_refused_at_load_and_on_reload(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, slack: SlackReceiver,
) -> None:
    name = f"templated-{secrets.token_hex(3)}"
    url = git_server.url(repo.name)
    sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"VERSION": "1"})}, "one")
    good = f"""
[notifications]
{FAST_DELIVERY}
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "SLACK_BOT_TOKEN"
api_url = "{slack.api_url}"

[[notifications.templates]]
name = "short"
message = "{{{{ app.metadata.name }}}} {{{{ app.status.operationState.phase }}}}"

[[notifications.triggers]]
name = "on-sync-succeeded"
when = "app.status.operationState.phase in ['Succeeded']"
once_per = "app.status.operationState.syncResult.revision"
send = ["short"]

[[notifications.subscriptions]]
recipients = ["slack:payments"]
triggers = ["on-sync-succeeded"]
""" + app_toml(name, url, namespace)
    bad = good.replace("{{ app.status.operationState.phase }}", "{{ app.status.operationState.phase }")

    agent = await start_agent(good, env=ENV)
    agent_config = agent.config_path
    path = agent_config.with_name("bad.toml")
    path.write_text(agent_config.read_text().replace(good, bad))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent", "validate", "--config", str(path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert stderr.decode().strip() == (f"gitops-agent: {path}: notifications.templates[0].message: "
                                       "line 1: unexpected '}'")

    await eventually(lambda: slack.messages, within=30, what="the success message")
    assert slack.texts() == [f"{name} Succeeded"]
    agent_config.write_text(path.read_text())
    agent.proc.send_signal(signal.SIGHUP)

    async def refused() -> bool:
        return 'gitops_agent_config_reload_total{result="error"} 1.0' in await agent.metrics()

    await eventually(refused, within=15, what="the reload refused")
    (failure,) = [e for e in agent.events if e["msg"].startswith("configuration reload failed")]
    assert "notifications.templates[0].message" in failure["error"]

    newer = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"VERSION": "2"})}, "two")
    await agent.refresh(name)
    await eventually(lambda: agent.synced(name, newer), within=20, what="the next sync")
    await eventually(lambda: len(slack.messages) == 2, within=15, what="a message from the running configuration")
    assert slack.texts() == [f"{name} Succeeded"] * 2
    assert sha != newer
    await stop_cleanly(agent)
