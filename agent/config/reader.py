"""Reading TOML tables strictly: types, durations, sizes, and errors that name file, table and key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.errors import ConfigError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?")
_UNIT_BYTES = {"B": 1, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2, "GB": 1000**3, "GiB": 1024**3}

CREDENTIALS_VARIABLE = "${CREDENTIALS_DIRECTORY}"

T = TypeVar("T")


def parse_duration(text: str) -> float:
    """Parse `500ms`, `5s`, `3m`, `1h30m` into seconds."""
    text = text.strip()
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration (examples: 500ms, 5s, 3m, 1h30m)")
    return total


def parse_size(text: str) -> int:
    """Parse `512KiB`, `4MiB`, `1GB` or a plain number of bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 1048576, 512KiB, 4MiB, 1GB)")
    return int(match.group(1)) * _UNIT_BYTES[match.group(2) or "B"]


class Table:
    """Reads one TOML table, remembering where it is for error messages."""

    def __init__(self, file: str, where: str, data: Mapping[str, Any]) -> None:
        self.file, self.where, self.data = file, where, data
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self._path(key)}: {problem}")

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type[T], default: T | None = None, *, required: bool = False) -> T:
        self.used.add(key)
        if key not in self.data:
            if required or default is None:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.error(key, f"must be {_type_name(kind)}, not {_type_name(type(value))} {value!r}")
        return value  # type: ignore[no-any-return]

    def convert(self, key: str, default: T, parse: Callable[[str], T]) -> T:
        if key not in self.data:
            self.used.add(key)
            return default
        text = self.get(key, str)
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value < 1:
            raise self.error(key, f"must be at least 1, not {value}")
        return value

    def non_negative(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value < 0:
            raise self.error(key, f"must be 0 or more, not {value}")
        return value

    def strings(self, key: str, *, required: bool = False) -> list[str]:
        values = self.get(key, list, None if required else [], required=required)
        if not all(isinstance(v, str) for v in values):
            raise self.error(key, "must be an array of strings")
        return values

    def sub(self, key: str) -> Table | None:
        """A nested table such as `[applications.sync_policy]`, or None when absent."""
        if key not in self.data:
            self.used.add(key)
            return None
        return Table(self.file, f"{self.where}.{key}", self.get(key, dict))

    def sub_array(self, key: str) -> list[Table]:
        """An array of tables such as `[[applications]]` or `[[applications.ignore_differences]]`."""
        items = self.get(key, list, [])
        tables = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{index}]", f"must be a table ([[{self._path(key)}]])")
            tables.append(Table(self.file, self._path(f"{key}[{index}]"), item))
        return tables

    def path(self, key: str, default: str = "") -> str:
        """A file path; `${CREDENTIALS_DIRECTORY}` in it is replaced by that variable.

        systemd's `LoadCredential=` puts secrets in a directory only known at start
        (`$CREDENTIALS_DIRECTORY`), so a unit's config can name `${CREDENTIALS_DIRECTORY}/git-token`.
        No other variable is expanded: a path means what it says.
        """
        value = self.get(key, str, default)
        if CREDENTIALS_VARIABLE not in value:
            return value
        directory = os.environ.get("CREDENTIALS_DIRECTORY", "")
        if not directory:
            raise self.error(key, f"uses {CREDENTIALS_VARIABLE}, but CREDENTIALS_DIRECTORY is not set "
                                  "(systemd sets it for a unit with LoadCredential=)")
        return value.replace(CREDENTIALS_VARIABLE, directory.rstrip("/"))

    def size(self, key: str, default: int) -> int:
        """A byte count written as an integer or as a string with a unit (`4MiB`)."""
        self.used.add(key)
        value = self.data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        elif isinstance(value, str):
            try:
                size = parse_size(value)
            except ValueError as exc:
                raise self.error(key, str(exc)) from exc
        else:
            raise self.error(key, f"must be a size (an integer of bytes or a string like \"4MiB\"), not {value!r}")
        if size < 1:
            raise self.error(key, f"must be at least 1 byte, not {value!r}")
        return size

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number", list: "an array",
            dict: "a table"}.get(kind, kind.__name__)
