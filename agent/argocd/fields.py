"""Reading argoproj.io objects strictly, and the errors that name file, object and field.

Argo CD's own types drop what they do not know, and an API server prunes it; here there
is no server, so every key is either read or refused. A refused key that Argo CD would
honour (a Helm source, a remote cluster) is `Unsupported`: the app it belongs to is shown,
`Unknown`, and nothing of it is applied. A malformed value is `InvalidDefinition`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError


class InvalidDefinition(ConfigError):
    """An argoproj.io object that cannot be adopted as written.

    `str()` reads `FILE: Kind name: field: problem`; `name` is "" when the object has none.
    """

    def __init__(self, problem: str, *, file: str, kind: str, name: str, field: str = "") -> None:
        subject = f"{kind} {name}" if name else kind
        where = f"{field}: " if field and not problem.startswith(field) else ""
        super().__init__(f"{file}: {subject}: {where}{problem}")
        self.file, self.kind, self.name, self.field, self.problem = file, kind, name, field, problem


class Unsupported(InvalidDefinition):
    """A field Argo CD would honour that this agent does not (yet): refused, never ignored."""


class Subject:
    """The object being read: its file, kind and name, for every message about it."""

    def __init__(self, *, file: str, kind: str, name: str = "") -> None:
        self.file, self.kind, self.name = file, kind, name

    def invalid(self, field: str, problem: str) -> InvalidDefinition:
        return InvalidDefinition(problem, file=self.file, kind=self.kind, name=self.name, field=field)

    def unsupported(self, field: str, problem: str = "") -> Unsupported:
        problem = problem or f"{field} is not supported"
        return Unsupported(problem, file=self.file, kind=self.kind, name=self.name, field=field)


class Fields:
    """One mapping inside an object (`spec.source`), read key by key; `finish()` refuses the rest.

    A key whose value is null counts as absent, as it does for Argo CD's Go types.
    """

    def __init__(self, subject: Subject, path: str, data: Mapping[str, Any]) -> None:
        self.subject, self.path = subject, path
        self.data = {key: value for key, value in data.items() if value is not None}
        self.used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def invalid(self, key: str, problem: str) -> InvalidDefinition:
        return self.subject.invalid(self.field(key), problem)

    def unsupported(self, key: str, problem: str = "") -> Unsupported:
        return self.subject.unsupported(self.field(key), problem)

    def invalid_here(self, problem: str) -> InvalidDefinition:
        """A problem with this mapping as a whole."""
        return self.subject.invalid(self.path, problem)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.invalid(key, "is required")
            return default
        if not isinstance(value, str):
            raise self.invalid(key, f"must be a string, not {_describe(value)}")
        if required and not value:
            raise self.invalid(key, "must not be empty")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.invalid(key, f"must be true or false, not {_describe(value)}")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(key, f"must be an integer, not {_describe(value)}")
        return value

    def strings(self, key: str) -> list[str]:
        values = self.raw(key)
        if values is None:
            return []
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            raise self.invalid(key, f"must be a list of strings, not {_describe(values)}")
        return values

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.invalid(key, f"must be a map of strings, not {_describe(value)}")
        for name, item in value.items():
            if not isinstance(name, str) or not isinstance(item, str):
                raise self.invalid(f"{key}.{name}", f"must be a string, not {_describe(item)}")
        return dict(value)

    def sub(self, key: str) -> Fields | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.invalid(key, f"must be a map, not {_describe(value)}")
        return Fields(self.subject, self.field(key), value)

    def items(self, key: str) -> list[Fields]:
        values = self.raw(key)
        if values is None:
            return []
        if not isinstance(values, list):
            raise self.invalid(key, f"must be a list, not {_describe(values)}")
        result = []
        for index, item in enumerate(values):
            if not isinstance(item, dict):
                raise self.invalid(f"{key}[{index}]", f"must be a map, not {_describe(item)}")
            result.append(Fields(self.subject, self.field(f"{key}[{index}]"), item))
        return result

    def refuse(self, keys: Iterable[str], problem: str = "is not supported") -> None:
        """Refuse keys Argo CD honours, when they are set to anything but their zero value."""
        for key in keys:
            value = self.data.get(key)
            if value not in (None, False, "", [], {}, 0):
                raise self.unsupported(key, f"{self.field(key)} {problem}")
            self.used.add(key)

    def finish(self) -> None:
        for key in sorted(set(self.data) - self.used, key=str):
            raise self.unsupported(key)


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a map"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 60 else kind


@dataclass(frozen=True)
class Refused:
    """A declaration that names its object but cannot be adopted: the app (or project) is shown
    `Unknown` with `message`, and nothing of it is applied. `unsupported` tells a field this agent
    does not support yet from a definition that is wrong as written (which also makes the parent
    not Synced)."""

    kind: str  # Application, AppProject or ApplicationSet
    name: str
    origin: str
    message: str
    unsupported: bool
    project: str = ""  # an Application's `spec.project` as written, when it is a string (who may see the app)

    @classmethod
    def of(cls, error: InvalidDefinition, *, origin: str, project: str = "") -> Refused:
        return cls(kind=error.kind, name=error.name, origin=origin, message=str(error),
                   unsupported=isinstance(error, Unsupported), project=project)


def declared_project(obj: Mapping[str, Any]) -> str:
    """An Application's `spec.project` when it is a string, read without judging the rest."""
    spec = obj.get("spec")
    project = spec.get("project") if isinstance(spec, Mapping) else None
    return project if isinstance(project, str) else ""
