"""CLI verbs that talk to a running agent over its HTTP API: history, rollback, resume.

The server is `--server URL`, else `$GITOPS_AGENT_SERVER`, else `http://127.0.0.1:8080`.
With `[auth]` on the agent, the token is read from the file `$GITOPS_AGENT_TOKEN_FILE` or
taken from `$GITOPS_AGENT_TOKEN`; an HTTPS agent with a private CA is verified with
`$GITOPS_AGENT_CA_FILE`. Plain blocking urllib: one request per command, no event loop needed.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import quote

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "GITOPS_AGENT_SERVER"
TOKEN_ENV, TOKEN_FILE_ENV, CA_FILE_ENV = "GITOPS_AGENT_TOKEN", "GITOPS_AGENT_TOKEN_FILE", "GITOPS_AGENT_CA_FILE"
TIMEOUT = 600.0  # a rollback waits for the sync, health waits included
EXIT_FAILED = 1
EXIT_UNREACHABLE = 3


class RemoteError(Exception):
    def __init__(self, message: str, *, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body


def server_url(option: str | None) -> str:
    return (option or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")


def bearer_token() -> str:
    """The API token from `$GITOPS_AGENT_TOKEN_FILE` (read now) or `$GITOPS_AGENT_TOKEN`; "" for none."""
    path = os.environ.get(TOKEN_FILE_ENV, "")
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().strip()
        except OSError as exc:
            raise RemoteError(f"${TOKEN_FILE_ENV} {path}: cannot read: {exc.strerror}") from exc
    return os.environ.get(TOKEN_ENV, "").strip()


def call(server: str, method: str, path: str, body: Any = None, *, timeout: float = TIMEOUT) -> tuple[int, Any]:
    """One request; returns (HTTP status, decoded JSON). Non-2xx answers are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = bearer_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server + path, data=data, method=method, headers=headers)
    ca_file = os.environ.get(CA_FILE_ENV) or None
    try:
        context = ssl.create_default_context(cafile=ca_file) if server.startswith("https://") else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        try:
            return exc.code, json.loads(payload or b"null")
        except ValueError:
            return exc.code, {"error": payload.decode("utf-8", "replace")[:500]}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RemoteError(f"cannot reach the agent at {server}: {reason}") from exc


def history_table(entries: Sequence[dict[str, Any]]) -> list[str]:
    """The history as aligned text rows, newest first."""
    header = ["ID", "REVISION", "TRIGGER", "PHASE", "STARTED", "DURATION", "CREATED", "CONFIGURED", "PRUNED",
              "FAILED", "AUTHOR", "MESSAGE"]
    rows = [header]
    for entry in entries:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(entry["started"])))
        rows.append([
            str(entry["id"]), str(entry["revision"])[:7], str(entry["trigger"]), str(entry["phase"]), started,
            f"{float(entry['finished']) - float(entry['started']):.1f}s", str(entry["created"]),
            str(entry["configured"]), str(entry["pruned"]), str(entry["failed"]), str(entry["author"]),
            str(entry["message"])[:60],
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return [" ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + " " + row[-1]
            for row in rows]


def _app_path(app: str, verb: str = "") -> str:
    return f"/api/v1/applications/{quote(app, safe='')}" + (f"/{verb}" if verb else "")


def run_remote(verb: str, app: str, *, server: str | None, revision: str | None = None,
               out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one verb against the agent; returns the exit code."""
    base = server_url(server)
    try:
        if verb == "history":
            status, body = call(base, "GET", _app_path(app))
        elif verb == "rollback":
            status, body = call(base, "POST", _app_path(app, "rollback"), {"revision": revision} if revision else {})
        else:
            status, body = call(base, "POST", _app_path(app, "resume"), {})
    except RemoteError as exc:
        print(f"gitops-agent: {exc}", file=err)
        return EXIT_UNREACHABLE
    if status >= 400 and not (verb == "rollback" and status == 409 and isinstance(body, dict) and "phase" in body):
        message = body.get("error") if isinstance(body, dict) else body
        print(f"gitops-agent: {verb} {app}: HTTP {status}: {message}", file=err)
        return EXIT_FAILED
    _report(verb, app, body, out)
    return EXIT_FAILED if status >= 400 else 0


def _report(verb: str, app: str, body: dict[str, Any], out: TextIO) -> None:
    if verb == "history":
        for line in history_table(body.get("history") or []):
            print(line, file=out)
        if body.get("auto_sync_paused"):
            print(f"auto-sync paused: {body['auto_sync_paused']['reason']}", file=out)
    elif verb == "rollback":
        revision = str(body.get("revision") or "")[:7]
        print(f"{app}: rolled back to {revision}: {body.get('phase')}"
              + (f": {body['message']}" if body.get("message") else ""), file=out)
        counts: dict[str, int] = {}
        for change in body.get("changes") or []:
            counts[change["action"]] = counts.get(change["action"], 0) + 1
        if counts:
            print("  " + ", ".join(f"{action} {count}" for action, count in sorted(counts.items())), file=out)
        if body.get("auto_sync_paused"):
            print(f"  auto-sync paused until a new commit or `gitops-agent resume {app}`", file=out)
    else:
        print(f"{app}: auto-sync " + ("resumed" if body.get("resumed") else "was not paused; refreshed"), file=out)
