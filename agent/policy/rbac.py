"""Who may do what to which app: Argo CD's RBAC, evaluated by casbin with Argo CD's model. Pure.

The model is Argo CD's `assets/model.conf`: a request `(subject, resource, action, object)`
is allowed when some `p` line of a role the subject holds (through `g` lines, transitively)
allows it and none denies it; resource, action and object are globs (`*` matches `/` too).
Policies come from three places, as in Argo CD:

- built in: `role:readonly` gets every application, `role:admin` does everything;
- `[auth] policy_csv`: `p, subject, resource, action, object, effect` and `g, user-or-group, role`;
- every project's roles: `p, proj:<project>:<role>, applications, <action>, <project>/<app>, allow`
  lines from `policies`, and `g, <group>, proj:<project>:<role>` for each of its `groups`.

`policy_default` is a role every authenticated subject holds. A subject is a user and the
groups its token names; a `proj:<project>:<role>` user or group acts as that project role, and
only on that project's apps. Deny beats allow across all of it: a `deny` that matches the
user, any of its groups or the default role refuses the request, whatever else allows it
(Argo CD only lets a deny beat the allows of the same subject).

Actions on applications: `get`, `sync`, `rollback`, `override` (a sync to another revision
than the tracked one, asked for with `sync`), and `refresh` (a `get`), `resume` (a `sync`).
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import casbin

from agent.model import ProjectSpec
from agent.policy.globs import glob_match

APPLICATIONS = "applications"
ACTIONS = ("get", "sync", "rollback", "override")
ACTION_ALIASES = {"refresh": "get", "resume": "sync", "diff": "get"}  # what the API's other verbs count as
BUILTIN_ROLES = ("role:readonly", "role:admin")
_MODEL = """
[request_definition]
r = sub, res, act, obj

[policy_definition]
p = sub, res, act, obj, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && globOrRegexMatch(r.res, p.res) && globOrRegexMatch(r.act, p.act) && \
globOrRegexMatch(r.obj, p.obj)
"""
# Whether any deny line matches: the same matcher over the deny lines alone, read as allows
# (casbin's effects cannot ask "does some deny match" directly).
_DENY_MODEL = _MODEL.replace("e = some(where (p.eft == allow)) && !some(where (p.eft == deny))",
                             "e = some(where (p.eft == allow))")
_BUILTIN = (
    ("p", "role:readonly", APPLICATIONS, "get", "*/*", "allow"),
    ("p", "role:admin", APPLICATIONS, "*", "*/*", "allow"),
    ("g", "role:admin", "role:readonly"),
)
_ROLE_NAME = re.compile(r"^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$")
_PROJECT_RESOURCES = frozenset({"applications", "applicationsets", "repositories", "clusters", "logs", "exec"})
PolicyLine = tuple[str, ...]


class PolicyError(ValueError):
    """A policy line that cannot be read; the message names the line."""


@dataclass(frozen=True)
class Subject:
    """Who calls: the token's user and groups. `name` is what logs and the sync history record."""

    user: str
    groups: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.user


def parse_policy_csv(text: str, *, where: str = "policy_csv") -> list[PolicyLine]:
    """The `p` and `g` lines of an Argo CD policy CSV (blank lines and `#` comments skipped)."""
    lines: list[PolicyLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [field.strip() for field in next(csv.reader(io.StringIO(stripped), skipinitialspace=True))]
        lines.append(_checked(fields, f"{where} line {number}"))
    return lines


def _checked(fields: Sequence[str], where: str) -> PolicyLine:
    kind = fields[0] if fields else ""
    if kind == "p":
        if len(fields) != 6:
            raise PolicyError(f"{where}: a p line has five fields: p, subject, resource, action, object, effect")
        if fields[5] not in ("allow", "deny"):
            raise PolicyError(f"{where}: effect must be allow or deny, not {fields[5]!r}")
    elif kind == "g":
        if len(fields) != 3:
            raise PolicyError(f"{where}: a g line has two fields: g, user-or-group, role")
    else:
        raise PolicyError(f"{where}: a line starts with p or g, not {kind!r}")
    if any(not field for field in fields):
        raise PolicyError(f"{where}: a field is empty")
    return tuple(fields)


def project_role_lines(project: ProjectSpec) -> list[PolicyLine]:
    """A project's roles as policy lines (Argo CD's `ProjectPoliciesString`); a policy that is not
    about this project's own apps and role is an error, as Argo CD validates it.

    An object `*` means the project's own apps (`<project>/*`): Argo CD consults a project's
    policies only for requests about that project's apps, so that is what `*` grants there; written
    out, it keeps a role's groups from reaching other projects' apps through the shared enforcer.
    """
    lines: list[PolicyLine] = []
    for role in project.roles:
        subject = f"proj:{project.name}:{role.name}"
        if not _ROLE_NAME.match(role.name):
            raise PolicyError(f"project {project.name}: role name {role.name!r} must be letters, digits, '-' or '_'")
        for index, policy in enumerate(role.policies):
            where = f"project {project.name} role {role.name} policies[{index}]"
            parsed = parse_policy_csv(policy, where=where)
            if len(parsed) != 1:
                raise PolicyError(f"{where}: must be exactly one policy line")
            line = parsed[0]
            if line[0] == "p" and line[4] == "*":
                line = (*line[:4], f"{project.name}/*", line[5])
            _check_project_policy(project.name, subject, line, where)
            lines.append(line)
        lines += [("g", group, subject) for group in role.groups]
    return lines


def _check_project_policy(project: str, subject: str, line: PolicyLine, where: str) -> None:
    if line[0] != "p":
        raise PolicyError(f"{where}: must be a p line (groups go into the role's groups)")
    if line[1] != subject:
        raise PolicyError(f"{where}: the subject must be {subject}, not {line[1]}")
    if line[2] not in _PROJECT_RESOURCES:
        raise PolicyError(f"{where}: resource {line[2]!r} is not one a project grants (applications, ...)")
    if not re.fullmatch(rf"{re.escape(project)}(/[*\w.-]+)?/[*\w.-]+", line[4]):
        raise PolicyError(f"{where}: the object must be {project}/* or {project}/<app>, not {line[4]!r}")


class Rbac:
    """An enforcer for one set of policies; rebuilt (not changed) when configuration or projects change."""

    def __init__(self, lines: Iterable[PolicyLine], *, default_role: str = "") -> None:
        everything = [*_BUILTIN, *lines]
        self.default_role = default_role
        denies = [line if line[0] == "g" else (*line[:5], "allow") for line in everything
                  if line[0] == "g" or line[5] == "deny"]
        self._allow = _enforcer(_MODEL, everything)
        # Without a deny line nothing can be denied: no second evaluation per request.
        self._deny = _enforcer(_DENY_MODEL, denies) if any(line[0] == "p" for line in denies) else None

    @classmethod
    def build(cls, *, policy_csv: str = "", policy_default: str = "",
              projects: Iterable[ProjectSpec] = ()) -> Rbac:
        """From `[auth]` and the projects. Raises PolicyError naming the line that cannot be read."""
        lines = parse_policy_csv(policy_csv)
        for project in projects:
            lines += project_role_lines(project)
        return cls(lines, default_role=policy_default)

    def allowed(self, subject: Subject, action: str, project: str, app: str) -> bool:
        """May `subject` do `action` (an API verb: get, sync, rollback, override, refresh, resume)
        to app `app` of `project`?"""
        return self._decide(subject.user, subject.groups, ACTION_ALIASES.get(action, action), f"{project}/{app}")

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - instances are few and rebuilt, not long-lived per request
    def _decide(self, user: str, groups: tuple[str, ...], action: str, obj: str) -> bool:
        project = obj.partition("/")[0]
        identities = [name for name in (user, *groups) if name]
        # A project role acts only on its own project's apps (Argo CD's project tokens).
        identities = [name for name in identities if not _is_other_project_role(name, project)]
        if self.default_role:
            identities.append(self.default_role)
        request = (APPLICATIONS, action, obj)
        if self._deny is not None and any(self._deny.enforce(name, *request) for name in identities):
            return False
        return any(self._allow.enforce(name, *request) for name in identities)


def _is_other_project_role(name: str, project: str) -> bool:
    parts = name.split(":")
    return len(parts) == 3 and parts[0] == "proj" and parts[1] != project


def _glob_or_regex_match(value: str, pattern: str) -> bool:
    """The matcher's function, as Argo CD's `globMatchFunc`: the request's value first, then the pattern."""
    return glob_match(pattern, value)


def _enforcer(model_text: str, lines: Sequence[PolicyLine]) -> casbin.Enforcer:
    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=model_text))
    enforcer.add_function("globOrRegexMatch", _glob_or_regex_match)
    policies = [list(line[1:]) for line in lines if line[0] == "p"]
    links = [list(line[1:]) for line in lines if line[0] == "g"]
    if policies:
        enforcer.add_policies(policies)
    if links:
        enforcer.add_grouping_policies(links)
    return enforcer
