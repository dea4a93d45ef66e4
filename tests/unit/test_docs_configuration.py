"""docs/configuration.md is the configuration reference: its key tables must say what the parser does.

Each TOML table is documented under a heading that is its header (``## `[agent]` ``) followed by
a markdown table with the columns `key | type | default | meaning` (`[agent]` also has `reload`).
A table whose keys depend on its `type` is documented once per type
(``### `[[notifications.services]]` with `type = "slack"` ``).
The checks run both ways, against the parser itself rather than a copy of its knowledge:

- every key the parser reads (`Table.used`, recorded for every table it opens) is documented,
  and every documented key and table is read;
- a key documented as *required* is required, and every other key may be left out;
- writing the documented default explicitly gives the same settings as leaving the key out;
- the documented type is the one the parser enforces (a value of another kind is refused);
- `[agent]`'s reload column matches what a reload takes over (`RELOADABLE_AGENT_KEYS`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings, parse_duration, parse_settings, parse_size
from agent.config.diff import AGENT_KEYS, RELOADABLE_AGENT_KEYS
from agent.config.reader import Table
from agent.errors import ConfigError

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

_HEADING = re.compile(r'^#{2,4} `(\[\[?)([a-z_.]+)(\]\]?)`(?: with `type = "([a-z]+)"`)?$')
_COLUMNS = ("key", "type", "default", "meaning")

# Values for required keys, so that a configuration built from the reference parses.
REQUIRED_SAMPLES: dict[str, Any] = {
    "name": "demo",
    "repo": "https://git.example.com/payments/gitops.git",
    "url": "https://git.example.com/payments/",
    "kind": "Deployment",
    "group": "apps",
    "token_file": "/etc/gitops-agent/tokens.csv",
    "schedule": "0 22 * * *",
    "duration": "1h",
    "projects.sync_windows.kind": "deny",  # a table's own sample wins over the key's
    "host": "smtp.example.com",
    "from": "gitops@example.com",
    "message": "{{ app.metadata.name }} is {{ app.status.sync.status }}",
    "when": "app.status.sync.status == 'Synced'",
    "send": ["app-sync-succeeded"],
    "recipients": ["slack:payments"],
    "triggers": ["on-sync-succeeded"],
    "type": "slack",  # each type-specific table sets its own
}
# Tables that need one of several keys to be valid; a check of one key uses an alternative without it.
ONE_OF: dict[str, tuple[dict[str, Any], ...]] = {
    "applications.ignore_differences": ({"json_pointers": ["/spec/replicas"]},
                                        {"managed_fields_managers": ["kube-controller-manager"]}),
    "projects.destinations": ({"server": "https://kubernetes.default.svc"}, {"name": "in-cluster"}),
    "projects.sync_windows": ({"applications": ["*"]}, {"namespaces": ["*"]}),
    "clusters": ({"kubeconfig": "/etc/gitops-agent/staging.kubeconfig"},
                 {"server": "https://10.0.0.5:6443", "token_file": "/run/secrets/edge-token"}),
    "notifications.services:slack": ({"token_env": "SLACK_BOT_TOKEN"}, {"token_file": "/run/secrets/slack-token"}),
    "notifications.services:webhook": ({"url": "https://hooks.example.com/deploy"}, {"url_env": "ONCALL_URL"},
                                       {"url_file": "/run/secrets/oncall-url"}),
}
# Keys that are only valid together with another (a password needs a user name).
COMPANIONS: dict[tuple[str, str], dict[tuple[str, str], Any]] = {
    ("repositories", "password_file"): {("repositories", "username"): "deploy-bot"},
    ("repositories", "password_env"): {("repositories", "username"): "deploy-bot"},
    ("auth", "tls_cert_file"): {("auth", "tls_key_file"): "/etc/gitops-agent/tls.key"},
    ("clusters", "ca_file"): {("clusters", "server"): "https://10.0.0.5:6443",
                              ("clusters", "token_file"): "/run/secrets/edge-token"},
    ("auth", "tls_key_file"): {("auth", "tls_cert_file"): "/etc/gitops-agent/tls.crt"},
    ("notifications.services:email", "password_file"): {("notifications.services:email", "username"): "gitops"},
}
# A value of the wrong kind for each documented type; the parser must refuse it.
WRONG_KIND: dict[str, Any] = {
    "string": 1, "path": 1, "duration": "soon", "size": "lots", "integer": "1", "boolean": "yes",
    "array of strings": "x", "table of strings": "x", "string or array of strings": 1,
}


@dataclass(frozen=True)
class DocumentedKey:
    name: str
    type: str
    default: str  # a TOML literal, or "required"
    reload: str  # "live" / "restart" in [agent]; "" elsewhere

    @property
    def required(self) -> bool:
        return self.default == "required"

    def default_value(self) -> Any:
        return tomllib.loads(f"value = {self.default}")["value"]


@dataclass(frozen=True)
class DocumentedTable:
    path: str  # "applications.sync_policy"
    array: bool  # [[...]]
    keys: dict[str, DocumentedKey]
    type: str = ""  # the `type` this variant of the table is documented for ("": the only one)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.type}" if self.type else self.path


def documented_tables(text: str) -> dict[str, DocumentedTable]:
    tables: dict[str, DocumentedTable] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _HEADING.match(line)
        if not match:
            continue
        opening, path, closing, variant = match.groups()
        assert len(opening) == len(closing), f"malformed table heading {line!r}"
        table = DocumentedTable(path, opening == "[[", dict(_key_rows(lines, index + 1, path)), variant or "")
        assert table.id not in tables, f"{table.id} is documented twice"
        tables[table.id] = table
    return tables


def _key_rows(lines: list[str], start: int, table: str) -> Iterator[tuple[str, DocumentedKey]]:
    """The rows of the first markdown table after a heading."""
    index = start
    while index < len(lines) and not lines[index].startswith("|"):
        assert not lines[index].startswith("#"), f"[{table}] has no key table"
        index += 1
    header = [cell.strip() for cell in lines[index].strip().strip("|").split("|")]
    assert header[:3] == list(_COLUMNS[:3]) and header[-1] == "meaning", f"[{table}]: columns are {header}"
    assert set(header) <= {*_COLUMNS, "reload"}, f"[{table}]: unexpected columns {header}"
    seen: set[str] = set()
    for line in lines[index + 2:]:
        if not line.startswith("|"):
            break
        # Split off as many cells as there are columns: the meaning (last) may hold a `|`.
        cells = dict(zip(header, (cell.strip() for cell in line.split("|", len(header))[1:]), strict=True))
        key = re.fullmatch(r"`([a-z_]+)`", cells["key"])
        assert key, f"[{table}]: a key cell must be one `key`, not {cells['key']!r}"
        name = key.group(1)
        assert name not in seen, f"[{table}] {name} is documented twice"
        seen.add(name)
        default = cells["default"]
        if default != "required":
            literal = re.fullmatch(r"`(.+)`", default)
            assert literal, f"[{table}] {name}: the default must be `a TOML value` or required, not {default!r}"
            default = literal.group(1)
        assert cells["type"] in WRONG_KIND, f"[{table}] {name}: unknown type {cells['type']!r}"
        yield name, DocumentedKey(name, cells["type"], default, cells.get("reload", ""))


REFERENCE_TABLES = documented_tables(REFERENCE.read_text(encoding="utf-8"))
ALL_KEYS = [(table.id, key) for table in REFERENCE_TABLES.values() for key in table.keys]


def build_config(*, set_keys: Mapping[tuple[str, str], Any] | None = None,
                 drop: tuple[str, str] | None = None) -> dict[str, Any]:
    """A configuration holding every documented table once, with only what it requires."""
    set_keys = set_keys or {}
    root: dict[str, Any] = {}
    for table in sorted(REFERENCE_TABLES.values(), key=lambda t: t.path.count(".")):
        body = {name: REQUIRED_SAMPLES.get(f"{table.path}.{name}", REQUIRED_SAMPLES.get(name, "sample"))
                for name, key in table.keys.items() if key.required}
        if table.type:  # one entry per type, each named after it
            body.update(name=table.type, type=table.type)
        # Of the alternatives, the one a key set to a real value belongs to (it needs its partners); else
        # the first that neither sets a key being set (perhaps to its empty default) nor one being dropped.
        choices = ONE_OF.get(table.id, ())
        meant = {name for (path, name), value in set_keys.items() if path == table.id
                 and (name not in table.keys or table.keys[name].required or value != table.keys[name].default_value())}
        untouched = {name for (path, name) in set_keys if path == table.id} | ({drop[1]} if drop and
                                                                               drop[0] == table.id else set())
        chosen = next((choice for choice in choices if meant & set(choice)),
                      next((choice for choice in choices if not untouched & set(choice)), {}))
        body.update(chosen)
        body.update({name: value for (path, name), value in set_keys.items() if path == table.id})
        if drop and drop[0] == table.id:
            body.pop(drop[1], None)
        *parents, last = table.path.split(".")
        node = root
        for part in parents:
            node = node[part][0] if isinstance(node[part], list) else node[part]
        if table.array:
            node.setdefault(last, []).append(body)
        else:
            node[last] = body
    return root


def parse(config: Mapping[str, Any]) -> Settings:
    return parse_settings(config, file="reference.toml")


def test_every_required_key_has_a_sample() -> None:
    missing = [f"[{path}] {key}" for path, key in ALL_KEYS
               if REFERENCE_TABLES[path].keys[key].required and key not in REQUIRED_SAMPLES]
    assert not missing, f"add sample values for {missing} to REQUIRED_SAMPLES"


def test_keys_read_by_the_parser_are_the_documented_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Table] = []
    original_init = Table.__init__

    def recording_init(self: Table, file: str, where: str, data: Mapping[str, Any]) -> None:
        original_init(self, file, where, data)
        opened.append(self)

    monkeypatch.setattr(Table, "__init__", recording_init)
    parse(build_config())
    read: dict[str, set[str]] = {}
    for table in opened:
        read.setdefault(re.sub(r"\[\d+\]", "", table.where), set()).update(table.used)
    top_level = read.pop("")
    paths = {table.path for table in REFERENCE_TABLES.values()}
    assert top_level == {path for path in paths if "." not in path}, "top-level tables"
    assert set(read) == paths, "tables documented vs. tables the parser reads"
    for path, used in read.items():
        keys = {key for key in used if f"{path}.{key}" not in paths}  # sub-tables are documented apart
        documented = {key for table in REFERENCE_TABLES.values() if table.path == path for key in table.keys}
        assert keys - documented == set(), f"[{path}]: read by the parser but not documented"
        assert documented - keys == set(), f"[{path}]: documented but not read by the parser"


@pytest.mark.parametrize(("table", "key"), ALL_KEYS, ids=[f"{t}.{k}" for t, k in ALL_KEYS])
def test_documented_default_is_the_default(table: str, key: str) -> None:
    documented = REFERENCE_TABLES[table].keys[key]
    if documented.required:
        with pytest.raises(ConfigError, match=rf"\b{key}: is required"):
            parse(build_config(drop=(table, key)))
        return
    omitted = parse(build_config(drop=(table, key)))
    explicit = parse(build_config(set_keys={(table, key): documented.default_value()}))
    assert explicit == omitted, f"[{table}] {key}: the documented default {documented.default} is not the default"


def _fits(value: Any, kind: str) -> bool:
    if kind in ("string", "path"):
        return isinstance(value, str)
    if kind == "duration":
        return isinstance(value, str) and parse_duration(value) >= 0
    if kind == "size":
        return isinstance(value, int | str) and not isinstance(value, bool) and parse_size(str(value)) > 0
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array of strings":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == "table of strings":
        return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    return isinstance(value, str | list)  # string or array of strings


@pytest.mark.parametrize(("table", "key"), ALL_KEYS, ids=[f"{t}.{k}" for t, k in ALL_KEYS])
def test_documented_type_is_enforced(table: str, key: str) -> None:
    documented = REFERENCE_TABLES[table].keys[key]
    if not documented.required:
        value = documented.default_value()
        assert _fits(value, documented.type), \
            f"[{table}] {key}: the default {documented.default} is not a {documented.type}"
    with pytest.raises(ConfigError, match=rf"\b{key}\b"):
        parse(build_config(set_keys={(table, key): WRONG_KIND[documented.type]}))


@pytest.mark.parametrize(("table", "key"), ALL_KEYS, ids=[f"{t}.{k}" for t, k in ALL_KEYS])
def test_credentials_directory_is_expanded_in_paths_only(table: str, key: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    documented = REFERENCE_TABLES[table].keys[key]
    if documented.type not in ("string", "path"):
        return
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/gitops-agent")
    named = _parse_or_none({(table, key): "${CREDENTIALS_DIRECTORY}/file", **COMPANIONS.get((table, key), {})})
    expanded = _parse_or_none({(table, key): "/run/credentials/gitops-agent/file", **COMPANIONS.get((table, key), {})})
    if documented.type == "path":
        assert named is not None and named == expanded, \
            f"[{table}] {key}: documented as a path, but ${{CREDENTIALS_DIRECTORY}} is not expanded in it"
    else:
        assert named is None or named != expanded, \
            f"[{table}] {key}: ${{CREDENTIALS_DIRECTORY}} is expanded: document it as a path"


def _parse_or_none(set_keys: Mapping[tuple[str, str], Any]) -> Settings | None:
    """The settings, or None when the value is refused (a string with its own syntax: a name, HOST:PORT)."""
    try:
        return parse(build_config(set_keys=set_keys))
    except ConfigError:
        return None


def test_agent_reload_column_matches_what_a_reload_takes_over() -> None:
    agent = REFERENCE_TABLES["agent"].keys
    assert set(agent) == set(AGENT_KEYS), "[agent] keys vs. config.diff.AGENT_KEYS"
    live = {name for name, key in agent.items() if key.reload == "live"}
    restart = {name for name, key in agent.items() if key.reload == "restart"}
    assert live | restart == set(agent), "every [agent] key says live or restart"
    assert live == set(RELOADABLE_AGENT_KEYS)
