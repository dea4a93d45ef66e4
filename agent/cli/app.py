"""`gitops-agent app list | get | diff | sync | refresh | history | rollback | resume | wait` against a
running agent's API (agent.cli.client), printed by agent.cli.output.

Exit codes, as `argocd app …`: 0 success (for `diff`: no difference); 1 the operation ran and
failed, a wait timed out, or `diff` found differences; 2 usage or the agent refused the request
(not found, bad request, busy); 3 the agent cannot be reached; 4 no token, an unknown one, or
not allowed. Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from agent.cli import output
from agent.cli.client import (
    EXIT_FAILED,
    EXIT_OK,
    Answer,
    Client,
    CliError,
    OperationFailed,
    app_path,
    bearer_token,
    server_url,
)

POLL = 0.5  # seconds between looks at the app while waiting
DEPRECATED = ("history", "rollback", "resume")  # the verbs that came before `app …`
Handler = Callable[[Client, argparse.Namespace, TextIO], int]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1h30m` in seconds (agent.config's spelling, without importing the agent)."""
    spelled = text.strip() + ("s" if text.strip()[-1:].isdigit() else "")
    parts = _DURATION.findall(spelled)
    if not parts or "".join(number + unit for number, unit in parts) != spelled:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (examples: 30, 90s, 5m, 1h30m)")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _resource(text: str) -> dict[str, str]:
    """`GROUP:KIND:NAME` or `GROUP:KIND:NAMESPACE/NAME` (group empty for the core group), as Argo CD's."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not GROUP:KIND:NAME (e.g. apps:Deployment:api, :ConfigMap:settings)")
    namespace, _, name = parts[2].rpartition("/")
    return {"group": parts[0], "kind": parts[1], "namespace": namespace, "name": name}


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=None,
                        help="the agent's URL (default: $GITOPS_AGENT_SERVER, else http://127.0.0.1:8080)")
    common.add_argument("--token", default=None,
                        help="API token (default: the file $GITOPS_AGENT_TOKEN_FILE, else $GITOPS_AGENT_TOKEN)")
    common.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
    return common


def add_parsers(verbs: Any) -> None:
    """`app VERB` and the deprecated top-level `history | rollback | resume`."""
    common = _common()
    app = verbs.add_parser("app", help="look at and operate applications of a running agent")
    sub = app.add_subparsers(dest="app_verb", required=True, metavar="VERB")
    sub.add_parser("list", parents=[common], help="every application with its sync and health")
    for verb, text in (("get", "one application: source, status, resources"),
                       ("diff", "what a sync would change, per object (exit 1 when anything differs)")):
        parser = sub.add_parser(verb, parents=[common], help=text)
        parser.add_argument("name")
        parser.add_argument("--refresh", action="store_true", help="compare again first (and wait for it)")
    sync = sub.add_parser("sync", parents=[common], help="sync now and print the result per object")
    sync.add_argument("name")
    sync.add_argument("--revision", help="sync this revision instead of the tracked one (needs `override`)")
    sync.add_argument("--prune", action="store_true", help="prune what Git no longer holds, whatever the policy")
    sync.add_argument("--dry-run", action="store_true", help="plan and diff only: change nothing")
    sync.add_argument("--resource", action="append", type=_resource, default=[], metavar="GROUP:KIND:NAME",
                      help="sync only this object (repeatable; NAME may be NAMESPACE/NAME)")
    sync.add_argument("--async", dest="run_async", action="store_true", help="queue the sync and return at once")
    sync.add_argument("--timeout", type=_duration, default=600.0, help="longest wait for the result (default 10m)")
    sub.add_parser("refresh", parents=[common], help="compare with Git and the cluster now").add_argument("name")
    _add_legacy(sub, common, prefix="")
    wait = sub.add_parser("wait", parents=[common], help="wait until the app is synced and healthy")
    wait.add_argument("name")
    wait.add_argument("--sync", action="store_true", help="wait for Synced (without --health: only that)")
    wait.add_argument("--health", action="store_true", help="wait for Healthy (without --sync: only that)")
    wait.add_argument("--timeout", type=_duration, default=300.0, help="give up after this long (default 5m)")
    _add_legacy(verbs, common, prefix="deprecated: ")


def _add_legacy(parsers: Any, common: argparse.ArgumentParser, *, prefix: str) -> None:
    history = parsers.add_parser("history", parents=[common], help=prefix + "the sync history, newest first")
    rollback = parsers.add_parser("rollback", parents=[common],
                                  help=prefix + "sync an earlier revision from the history and pause auto-sync")
    resume = parsers.add_parser("resume", parents=[common], help=prefix + "resume auto-sync paused by a rollback")
    for parser in (history, rollback, resume):
        parser.add_argument("name", help="application name")
    rollback.add_argument("revision", nargs="?", default=None,
                          help="commit SHA (or a prefix) from the history; default: the previous good one")


def run(args: argparse.Namespace, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one `app` verb (or a deprecated one); returns the exit code."""
    verb = getattr(args, "app_verb", None) or args.verb
    if args.verb in DEPRECATED:
        print(f"gitops-agent: `gitops-agent {verb}` is deprecated: use `gitops-agent app {verb}`", file=err)
    what = f"app {verb}" + (f" {args.name}" if getattr(args, "name", None) else "")
    try:
        timeout = max(getattr(args, "timeout", 0.0) + 30.0, 60.0)  # the server's answer may take that long
        client = Client(server_url(args.server), bearer_token(args.token), timeout=timeout)
        return HANDLERS[verb](client, args, out)
    except CliError as exc:
        print(f"gitops-agent: {what}: {exc}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _print(out: TextIO, lines: list[str]) -> None:
    for line in lines:
        print(line, file=out)


def _emit(out: TextIO, args: argparse.Namespace, body: Any, table: Callable[[Any], list[str]]) -> None:
    _print(out, table(body) if args.output == "table" else [output.document(body, args.output)])


def _get(client: Client, name: str) -> dict[str, Any]:
    body = client.call("GET", app_path(name)).body
    if not isinstance(body, dict):
        raise CliError(f"the agent answered {str(body)[:100]!r}, not an application")
    return body


def _refreshed(client: Client, name: str, *, within: float = 60.0) -> None:
    """Ask for a comparison and wait until it has happened (the app's `reconciled_at` moves)."""
    before = _get(client, name).get("reconciled_at") or 0.0
    client.call("POST", app_path(name, "refresh"))
    deadline = time.monotonic() + within
    while (_get(client, name).get("reconciled_at") or 0.0) <= before:
        if time.monotonic() > deadline:
            raise CliError(f"no comparison within {within:.0f}s of the refresh")
        time.sleep(POLL)


# ------------------------------------------------------------------ the verbs


def list_apps(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    _emit(out, args, client.call("GET", "/api/v1/applications").body, output.app_list)
    return EXIT_OK


def get_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.refresh:
        _refreshed(client, args.name)
    _emit(out, args, _get(client, args.name), output.app_detail)
    return EXIT_OK


def diff_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.refresh:
        _refreshed(client, args.name)
    body = client.call("GET", app_path(args.name, "diff")).body
    _emit(out, args, body, lambda answer: output.diffs(answer.get("diffs") or {}))
    return EXIT_FAILED if body.get("diffs") else EXIT_OK


def sync_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"revision": args.revision, "prune": True if args.prune else None,
                            "dry_run": args.dry_run or None, "resources": args.resource or None,
                            "async": args.run_async or None}
    answer = client.call("POST", app_path(args.name, "sync"), {k: v for k, v in body.items() if v is not None},
                         results=(409,))
    if answer.status == 202:
        _emit(out, args, answer.body, lambda _: [
            f"{args.name}: sync queued; follow it with `gitops-agent app wait {args.name}`"])
        return EXIT_OK
    result = _result(answer)
    verb = "dry-run" if args.dry_run else "sync"
    _emit(out, args, result, lambda r: output.operation_result(r, verb=verb)
          + (["", *output.diffs(r.get("diffs") or {})] if args.dry_run and r.get("diffs") else []))
    if args.dry_run:
        return EXIT_FAILED if result.get("error") else EXIT_OK
    return _outcome(result)


def _result(answer: Answer) -> dict[str, Any]:
    """A sync's result; a 409 that carries none (not the leader, a refused rollback) is an error."""
    if not isinstance(answer.body, dict) or "phase" not in answer.body:
        message = answer.body.get("error") if isinstance(answer.body, dict) else answer.body
        raise CliError(f"{message} (HTTP {answer.status})")
    return answer.body


def _outcome(result: Mapping[str, Any]) -> int:
    return EXIT_OK if not result.get("error") and result.get("phase") == "Succeeded" else EXIT_FAILED


def refresh_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.call("POST", app_path(args.name, "refresh"))
    _emit(out, args, answer.body, lambda _: [f"{args.name}: refresh queued"])
    return EXIT_OK


def history_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    app = _get(client, args.name)
    paused = app.get("auto_sync_paused")
    _emit(out, args, app.get("history") or [], lambda entries: output.history(entries)
          + ([f"auto-sync paused: {paused['reason']}"] if paused else []))
    return EXIT_OK


def rollback_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.call("POST", app_path(args.name, "rollback"), {"revision": args.revision} if args.revision else {},
                         results=(409,))
    result = _result(answer)

    def report(r: Mapping[str, Any]) -> list[str]:
        message = r.get("error") or r.get("message")
        lines = [f"{args.name}: rolled back to {output.short(r.get('revision'))}: {r.get('phase')}"
                 + (f": {message}" if message else "")]
        lines += output.operation_result(r, verb="rollback", header=False)
        if r.get("auto_sync_paused"):
            lines.append(f"auto-sync paused until a new commit or `gitops-agent app resume {args.name}`")
        return lines

    _emit(out, args, result, report)
    return _outcome(result)


def resume_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.call("POST", app_path(args.name, "resume"))
    _emit(out, args, answer.body, lambda body: [
        f"{args.name}: auto-sync " + ("resumed" if body.get("resumed") else "was not paused; refreshed")])
    return EXIT_OK


def wait_app(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """Until Synced and/or Healthy (both, and no sync running, without --sync or --health)."""
    want_sync, want_health = (args.sync, args.health) if args.sync or args.health else (True, True)
    deadline = time.monotonic() + args.timeout
    while True:
        app = _get(client, args.name)
        missing = ([f"sync {app['sync_status']}"] if want_sync and app["sync_status"] != "Synced" else []) + (
            [f"health {app['health_status']}"] if want_health and app["health_status"] != "Healthy" else []) + (
            ["a sync is running"] if not (args.sync or args.health) and app.get("operation") else [])
        if not missing:
            _emit(out, args, app, lambda a: [
                f"{a['name']}: {a['sync_status']}, {a['health_status']} at {output.short(a.get('revision'))}"])
            return EXIT_OK
        if time.monotonic() >= deadline:
            raise OperationFailed(f"timed out after {args.timeout:g}s: {', '.join(missing)}")
        time.sleep(POLL)


HANDLERS: dict[str, Handler] = {
    "list": list_apps, "get": get_app, "diff": diff_app, "sync": sync_app, "refresh": refresh_app,
    "history": history_app, "rollback": rollback_app, "resume": resume_app, "wait": wait_app,
}
