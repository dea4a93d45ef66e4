"""How `gitops-agent app …` prints: kubectl-aligned tables, `Key: value` blocks, JSON and YAML. Pure text."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NONE = "<none>"
GAP = "   "  # kubectl's column gap


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Rows aligned under `header`, as kubectl prints them; the last column is not padded."""
    cells = [list(header), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[index]) for row in cells) for index in range(len(header))]
    return [GAP.join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)), row[-1]]).rstrip()
            for row in cells]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()) or NONE  # one line per row, whatever a commit message holds


def fields(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    """`Key:   value` lines, values aligned (Argo CD's `app get`)."""
    width = max(len(key) for key, _ in pairs) + 2
    return [f"{key + ':':<{width}}{_cell(value)}" for key, value in pairs]


def age(timestamp: float | None, *, now: float | None = None) -> str:
    """kubectl's AGE: `45s`, `12m`, `5h`, `3d`; `<none>` when it never happened."""
    if not timestamp:
        return NONE
    seconds = max(0, int((time.time() if now is None else now) - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def moment(timestamp: float | None) -> str:
    """A local date and time, and how long ago."""
    if not timestamp:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(timestamp)) + f" ({age(timestamp)} ago)"


def short(sha: str | None) -> str:
    return sha[:7] if sha else NONE


def document(value: Any, output: str) -> str:
    """`-o json` or `-o yaml` of an API answer."""
    if output == "yaml":
        import yaml  # only here: a table or JSON needs nothing but the standard library

        return yaml.safe_dump(value, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False)


def object_name(item: Mapping[str, Any]) -> str:
    namespace = item.get("namespace") or ""
    return f"{item.get('kind', '')}/{namespace + '/' if namespace else ''}{item.get('name', '')}"


# ------------------------------------------------------------------ per verb


def app_list(apps: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ["NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "AGE", "NAMESPACE", "CONDITIONS"]
    return table(header, ([app["name"], app.get("project") or "", _sync(app), app["health_status"],
                           short(app.get("revision")), age(app.get("last_synced_at")), app.get("dest_namespace"),
                           ",".join(c["type"] for c in app.get("conditions") or [])] for app in apps))


def _sync(app: Mapping[str, Any]) -> str:
    return str(app["sync_status"]) + ("(paused)" if app.get("auto_sync_paused") else "")


def app_detail(app: Mapping[str, Any]) -> list[str]:
    source, destination = app.get("source") or {}, app.get("destination") or {}
    paused = app.get("auto_sync_paused")
    operation = app.get("operation")
    pairs: list[tuple[str, Any]] = [
        ("Name", app["name"]), ("Project", app.get("project")), ("Server", destination.get("server")),
        ("Namespace", destination.get("namespace")), ("Repo", source.get("repo")),
        ("Target", source.get("revision")), ("Path", source.get("path")),
        ("Sync Status", f"{app['sync_status']} to {source.get('revision', '')} ({short(app.get('revision'))})"),
        ("Health Status", app["health_status"]),
        ("Revision", _revision(app)), ("Last Sync", moment(app.get("last_synced_at"))),
        ("Compared", moment(app.get("reconciled_at"))),
    ]
    if paused:
        pairs.append(("Auto-Sync", f"paused: {paused['reason']}"))
    if operation:
        pairs.append(("Operation", f"Running: {operation.get('message') or 'sync in progress'}"))
    if app.get("message"):
        pairs.append(("Message", app["message"]))
    lines = fields(pairs)
    for condition in app.get("conditions") or []:
        lines.append(f"Condition:     {condition['type']}: {condition['message']}")
    resources = app.get("resources") or []
    if resources:
        lines += ["", *table(["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH", "MESSAGE"], (
            [r["group"], r["kind"], r["namespace"], r["name"], r["sync_status"] or r.get("action"),
             r["health_status"], r.get("health_message") or r.get("message")] for r in resources))]
    return lines


def _revision(app: Mapping[str, Any]) -> str:
    sha = app.get("revision")
    if not sha:
        return NONE
    author, message = app.get("revision_author") or "", app.get("revision_message") or ""
    return f"{short(sha)}" + (f" by {author}" if author else "") + (f": {message}" if message else "")


def history(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Newest first; ID, REVISION, TRIGGER and PHASE lead (scripts cut them)."""
    header = ["ID", "REVISION", "TRIGGER", "PHASE", "STARTED", "DURATION", "INITIATOR", "CREATED", "CONFIGURED",
              "PRUNED", "FAILED", "AUTHOR", "MESSAGE"]
    return table(header, ([
        e["id"], short(e["revision"]), e["trigger"], e["phase"],
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e["started"]))),
        f"{float(e['finished']) - float(e['started']):.1f}s", e.get("initiated_by") or "", e["created"],
        e["configured"], e["pruned"], e["failed"], e["author"], str(e["message"])[:60]] for e in entries))


def operation_result(result: Mapping[str, Any], *, verb: str, header: bool = True) -> list[str]:
    """What a sync, dry run or rollback did, object by object (after name, revision, phase and message)."""
    pairs: list[tuple[str, Any]] = [("Name", result.get("name")), ("Revision", short(result.get("revision"))),
                                    ("Phase", result.get("phase") or "not run"),
                                    ("Message", result.get("error") or result.get("message"))]
    lines = fields(pairs) if header else []
    changes = result.get("changes") or []
    if changes:
        lines += ["", *table(["GROUP", "KIND", "NAMESPACE", "NAME", "RESULT", "MESSAGE"], (
            [c["group"], c["kind"], c["namespace"], c["name"], c["action"], c.get("message")] for c in changes))]
    elif verb == "dry-run" and result.get("plan"):
        lines += ["", *table(["GROUP", "KIND", "NAMESPACE", "NAME", "WAVE", "PLAN"], (
            [p["group"], p["kind"], p["namespace"], p["name"], p["wave"], p["action"]] for p in result["plan"]))]
    hooks = result.get("hooks") or []
    if hooks:
        lines += ["", *table(["HOOK", "KIND", "NAMESPACE", "NAME", "STATUS", "MESSAGE"], (
            [h["phase"], h["kind"], h["namespace"], h["name"], h["status"], h.get("message")] for h in hooks))]
    return lines


def diffs(by_object: Mapping[str, str]) -> list[str]:
    """Each object's unified diff under a heading, as `argocd app diff` prints them."""
    lines: list[str] = []
    for name, diff in sorted(by_object.items()):
        lines += [f"===== {name} ======", *diff.rstrip("\n").splitlines(), ""]
    return lines
