"""The HTTP client of `gitops-agent app …`: one blocking request per call, plain urllib, no event loop.

The server is `--server URL`, else `$GITOPS_AGENT_SERVER`, else `http://127.0.0.1:8080`. With
`[auth]` on the agent, the token is `--token`, else the content of the file
`$GITOPS_AGENT_TOKEN_FILE`, else `$GITOPS_AGENT_TOKEN`; an HTTPS agent with a private CA is
verified with `$GITOPS_AGENT_CA_FILE`.

Failures are exceptions that carry the exit code the command ends with, and a one-line message:

    CliError                 exit 2: the agent refused the request (bad request, not found, busy)
    ├── OperationFailed      exit 1: it ran and did not succeed (a wait that timed out)
    ├── Unreachable          exit 3: no answer (refused connection, DNS, TLS, timeout)
    └── AccessDenied         exit 4: no token, an unknown token (401), or not allowed (403)
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

DEFAULT_SERVER = "http://127.0.0.1:8080"
SERVER_ENV = "GITOPS_AGENT_SERVER"
TOKEN_ENV, TOKEN_FILE_ENV, CA_FILE_ENV = "GITOPS_AGENT_TOKEN", "GITOPS_AGENT_TOKEN_FILE", "GITOPS_AGENT_CA_FILE"
TIMEOUT = 600.0  # a sync answers when it has ended, health waits included

EXIT_OK = 0
EXIT_FAILED = 1  # the operation ran and failed, a wait timed out, a diff found differences
EXIT_ERROR = 2  # usage, or the agent refused the request
EXIT_UNREACHABLE = 3
EXIT_ACCESS = 4


class CliError(Exception):
    exit_code = EXIT_ERROR


class OperationFailed(CliError):
    exit_code = EXIT_FAILED


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE


class AccessDenied(CliError):
    exit_code = EXIT_ACCESS


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # decoded JSON


def server_url(option: str | None) -> str:
    return (option or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")


def bearer_token(option: str | None = None) -> str:
    """`--token`, else the file `$GITOPS_AGENT_TOKEN_FILE` (read now), else `$GITOPS_AGENT_TOKEN`; "" for none."""
    if option:
        return option.strip()
    path = os.environ.get(TOKEN_FILE_ENV, "")
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().strip()
        except OSError as exc:
            raise CliError(f"${TOKEN_FILE_ENV} {path}: cannot read: {exc.strerror}") from exc
    return os.environ.get(TOKEN_ENV, "").strip()


def app_path(app: str, verb: str = "") -> str:
    return f"/api/v1/applications/{quote(app, safe='')}" + (f"/{verb}" if verb else "")


class Client:
    """The agent's API at `server`, with `token` (or none)."""

    def __init__(self, server: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.server, self.token, self.timeout = server, token, timeout

    def send(self, method: str, path: str, body: Any = None) -> Answer:
        """One request; any answer is returned (non-2xx too). Unreachable when there is none."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        ca_file = os.environ.get(CA_FILE_ENV) or None
        try:
            context = ssl.create_default_context(cafile=ca_file) if self.server.startswith("https://") else None
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                return Answer(response.status, _decoded(response.read()))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, _decoded(exc.read()))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach the agent at {self.server}: {reason}") from exc

    def call(self, method: str, path: str, body: Any = None, *, results: tuple[int, ...] = ()) -> Answer:
        """A request that must succeed: a 2xx answer, or one of `results` (a 409 carrying a failed sync's
        result is an answer, not an error); anything else raises with the agent's own words."""
        answer = self.send(method, path, body)
        if 200 <= answer.status < 300 or answer.status in results:
            return answer
        raise self._failure(answer)

    def _failure(self, answer: Answer) -> CliError:
        message = answer.body.get("error") if isinstance(answer.body, dict) else None
        message = str(message or answer.body or f"HTTP {answer.status}")[:500]
        if answer.status == 401:
            hint = "set --token or $GITOPS_AGENT_TOKEN" if not self.token else "check --token or $GITOPS_AGENT_TOKEN"
            return AccessDenied(f"the agent at {self.server} refused the request (HTTP 401): {message} ({hint})")
        if answer.status == 403:
            return AccessDenied(f"{message} (HTTP 403)")
        return CliError(f"{message} (HTTP {answer.status})")


def _decoded(payload: bytes) -> Any:
    try:
        return json.loads(payload or b"null")
    except ValueError:
        return {"error": payload.decode("utf-8", "replace")[:500]}
