"""The pure parts of `gitops-agent app …`: tables, ages, arguments, and the exit codes of failures."""

from __future__ import annotations

import argparse
import io

import pytest

from agent.cli import app, output
from agent.cli.client import EXIT_ACCESS, EXIT_ERROR, EXIT_FAILED, AccessDenied, Answer, Client, CliError


def test_tables_are_aligned_like_kubectl_and_show_none_for_empty_cells() -> None:
    lines = output.table(["NAME", "SYNC", "MESSAGE"], [["payment-service-dev", "Synced", ""],
                                                     ["ledger", "OutOfSync", "two\nlines"]])
    assert lines == ["NAME                  SYNC        MESSAGE",
                     "payment-service-dev   Synced      <none>",
                     "ledger                OutOfSync   two lines"]


def test_ages_read_as_kubectl_writes_them() -> None:
    now = 1_000_000.0
    assert [output.age(now - seconds, now=now) for seconds in (5, 125, 7300, 200_000)] == ["5s", "2m", "2h", "2d"]
    assert output.age(None, now=now) == "<none>"


def test_the_list_shows_project_sync_health_revision_age_and_conditions() -> None:
    apps = [{"name": "api", "project": "payments-team", "sync_status": "OutOfSync", "health_status": "Healthy",
             "revision": "0123456789abcdef", "last_synced_at": None, "dest_namespace": "payments",
             "conditions": [{"type": "SyncError", "message": "x"}], "auto_sync_paused": {"reason": "rolled back"}}]
    header, row = output.app_list(apps)
    assert header.split() == ["NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "AGE", "NAMESPACE", "CONDITIONS"]
    assert row.split() == ["api", "payments-team", "OutOfSync(paused)", "Healthy", "0123456", "<none>", "payments",
                           "SyncError"]


def test_diffs_print_under_one_heading_per_object() -> None:
    lines = output.diffs({"ConfigMap/payments/settings": "--- live\n+++ desired\n-a: 1\n+a: 2\n"})
    assert lines == ["===== ConfigMap/payments/settings ======", "--- live", "+++ desired", "-a: 1", "+a: 2", ""]


@pytest.mark.parametrize(("text", "expected"), [
    ("apps:Deployment:api", {"group": "apps", "kind": "Deployment", "namespace": "", "name": "api"}),
    (":ConfigMap:payments/settings", {"group": "", "kind": "ConfigMap", "namespace": "payments", "name": "settings"}),
])
def test_resources_are_given_as_argo_cd_spells_them(text: str, expected: dict[str, str]) -> None:
    assert app._resource(text) == expected


@pytest.mark.parametrize("text", ["Deployment", "apps:Deployment", "apps::api", "a:b:c:d"])
def test_a_resource_that_is_not_group_kind_name_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="GROUP:KIND:NAME"):
        app._resource(text)


def test_timeouts_take_plain_seconds_or_durations() -> None:
    assert [app._duration(text) for text in ("30", "90s", "5m", "1h30m", "500ms")] == [30, 90, 300, 5400, 0.5]
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        app._duration("5 minutes")


class Canned(Client):
    """A client whose every request gets the same answer (the HTTP exchange is tested against a real agent)."""

    def __init__(self, answer: Answer, token: str = "") -> None:
        super().__init__("http://agent", token)
        self.answer = answer

    def send(self, method: str, path: str, body: object = None) -> Answer:
        return self.answer


@pytest.mark.parametrize(("answer", "token", "error", "code", "text"), [
    (Answer(401, {"error": "authentication required"}), "", AccessDenied, EXIT_ACCESS, "set --token"),
    (Answer(401, {"error": "the token is not valid"}), "t", AccessDenied, EXIT_ACCESS, "check --token"),
    (Answer(403, {"error": "permission denied: sync applications p/a (subject vera)"}), "t", AccessDenied,
     EXIT_ACCESS, "permission denied"),
    (Answer(404, {"error": "application a not found"}), "", CliError, EXIT_ERROR, "application a not found (HTTP 404)"),
    (Answer(500, "oops"), "", CliError, EXIT_ERROR, "oops (HTTP 500)"),
])
def test_refusals_become_exit_codes_with_the_agents_words(answer: Answer, token: str, error: type[CliError],
                                                          code: int, text: str) -> None:
    with pytest.raises(error) as raised:
        Canned(answer, token).call("GET", "/api/v1/applications/a")
    assert raised.value.exit_code == code and text in str(raised.value)


def test_a_failed_sync_is_exit_1_and_prints_what_it_did() -> None:
    result = {"name": "api", "revision": "abcdef0123", "phase": "Failed", "message": "one object failed",
              "error": None, "changes": [{"group": "apps", "kind": "Deployment", "namespace": "p", "name": "api",
                                          "action": "failed", "message": "admission webhook said no"}]}
    args = argparse.Namespace(name="api", revision=None, prune=False, dry_run=False, resource=[], run_async=False,
                              output="table")
    out = io.StringIO()
    assert app.sync_app(Canned(Answer(409, result)), args, out) == EXIT_FAILED
    assert "Phase:    Failed" in out.getvalue() and "admission webhook said no" in out.getvalue()
    with pytest.raises(CliError, match="not the leader"):
        app.sync_app(Canned(Answer(409, {"error": "this agent is not the leader"})), args, out)
